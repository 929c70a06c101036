import HeraldTransport
import Testing

/// Header names match whatever the ASCII case, and only when they are the same name.
@Suite struct HTTPHeaderNameTests {
    @Test func anAnswersHeaderIsFoundWhateverItsASCIICase() {
        let answer = HTTPResponse(status: 429, headers: [("RETRY-after", "7"), ("Retry-After-Ms", "7000"), ("X-Ré", "1")])
        #expect(answer.header("Retry-After") == "7")
        #expect(answer.header("retry-after-ms") == "7000")
        #expect(answer.header("Retry-Afte") == nil)
        #expect(answer.header("x-rÉ") == nil, "only ASCII letters fold")
        #expect(answer.header("X-Ré") == "1")
        #expect(!HTTPHeaderName.equal("Expect", "Expecu"))
        #expect(HTTPHeaderName.equal("EXPECT", "expect"))
        #expect(!HTTPHeaderName.equal("[", "{"), "only letters fold: [ and { differ by the same bit")
    }
}
