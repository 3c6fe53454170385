import PolyadConfig
import XCTest

extension XCTestCase {
    /// Asserts that parsing `text` fails at `line`:`column` (`nil`: not checked) on `key` with a message containing
    /// `contains`.
    @discardableResult
    func assertError(
        _ text: String,
        file: String = "/etc/polyad/mount.conf",
        line: Int?,
        column: Int?,
        key: String?,
        contains: String,
        sourceFile: StaticString = #filePath,
        sourceLine: UInt = #line
    ) -> ConfigError? {
        do {
            let config = try Configuration.parse(text, file: file)
            XCTFail("expected an error for:\n\(text)\ngot \(config)", file: sourceFile, line: sourceLine)
            return nil
        } catch {
            if let line { XCTAssertEqual(error.line, line, "line: \(error)", file: sourceFile, line: sourceLine) }
            if let column {
                XCTAssertEqual(error.column, column, "column: \(error)", file: sourceFile, line: sourceLine)
            }
            XCTAssertEqual(error.key, key, "key: \(error)", file: sourceFile, line: sourceLine)
            XCTAssertEqual(error.file, file, file: sourceFile, line: sourceLine)
            XCTAssertTrue(
                error.message.contains(contains),
                "expected '\(contains)' in: \(error)",
                file: sourceFile,
                line: sourceLine
            )
            return error
        }
    }
}
