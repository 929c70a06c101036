import CCurl
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension CurlTransport {
    /// Sends `request` and writes the answer's whole body to `fileDescriptor` (not capped, not
    /// held in memory: a store backup can be gigabytes); the answer returned has an empty body.
    /// The caller owns the descriptor, and decides from the status what the file holds (an error
    /// answer's body lands there too). A write that fails aborts the transfer with `.other`.
    public func download(_ request: HTTPRequest, to fileDescriptor: Int32) async throws -> HTTPResponse {
        if let problem = Self.validate(request) {
            throw problem
        }
        let engine = self.engine
        final class Box: @unchecked Sendable { var transfer: Transfer? }
        let box = Box()
        do {
            return try await withCheckedThrowingContinuation { continuation in
                let transfer = Transfer(request: request, maxResponseBytes: 0, continuation: continuation)
                transfer.bodyFile = fileDescriptor
                box.transfer = transfer
                engine.submit(transfer)
            }
        } catch let error as TransportError {
            // The transfer has ended (its continuation was resumed), so reading it is safe.
            if let errorNumber = box.transfer?.bodyFileError, errorNumber != 0 {
                throw TransportError(kind: .other, message: "cannot write the answer: \(String(cString: strerror(errorNumber)))")
            }
            throw error
        }
    }
}
