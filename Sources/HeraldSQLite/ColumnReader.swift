import GRDB
import GRDBSQLite

/// A row's columns by position, for the functions that turn rows into deliveries, incidents and
/// outcomes' live states: from GRDB's `Row` for most queries, or straight from SQLite for the reads
/// every delivery makes (`ColumnReader`).
protocol ColumnValues {
    func text(_ index: Int) -> String?
    func real(_ index: Int) -> Double?
    func integer(_ index: Int) -> Int?
}

extension ColumnValues {
    func flag(_ index: Int) -> Bool? { integer(index).map { $0 != 0 } }
}

extension Row: ColumnValues {
    func text(_ index: Int) -> String? { self[index] }
    func real(_ index: Int) -> Double? { self[index] }
    func integer(_ index: Int) -> Int? { self[index] }
}

/// The current row of a stepped statement (`Statement.readRow`, or a GRDB cursor over a write).
/// In a profile of the store benchmark, GRDB's `Row` (built per statement run with its column
/// names, decoded through generic metadata) cost several times SQLite's own work for a claim's
/// incident and an outcome's read.
struct ColumnReader: ColumnValues {
    let statement: OpaquePointer

    func text(_ index: Int) -> String? {
        let column = Int32(index)
        guard let bytes = sqlite3_column_text(statement, column) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(statement, column))),
                      as: UTF8.self)
    }

    func real(_ index: Int) -> Double? {
        sqlite3_column_type(statement, Int32(index)) == SQLITE_NULL ? nil : sqlite3_column_double(statement, Int32(index))
    }

    func integer(_ index: Int) -> Int? {
        sqlite3_column_type(statement, Int32(index)) == SQLITE_NULL ? nil : Int(sqlite3_column_int64(statement, Int32(index)))
    }
}

extension Statement {
    /// Binds `arguments` and hands the first row of this read to `body`; the statement is reset
    /// after it. For SELECTs only: a write goes through GRDB, which tracks what it changes.
    func readRow<T>(_ arguments: StatementArguments, _ body: (ColumnReader) throws -> T) throws -> T? {
        try setArguments(arguments)
        defer { sqlite3_reset(sqliteStatement) }
        return try stepRow() ? try body(ColumnReader(statement: sqliteStatement)) : nil
    }

    /// Whether a row came (false at the end).
    private func stepRow() throws -> Bool {
        switch sqlite3_step(sqliteStatement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            throw DatabaseError(resultCode: ResultCode(rawValue: code),
                                message: String(cString: sqlite3_errmsg(sqlite3_db_handle(sqliteStatement))), sql: sql)
        }
    }
}
