import Dispatch
import Glibc
import XCTest

@testable import PolyadFileSystem

final class PathBytesTests: XCTestCase {
    func testDisplayEscapesWhatIsNotPrintableUTF8() {
        XCTAssertEqual(PathBytes.display([UInt8]("/home/anna/notes.txt")), "/home/anna/notes.txt")
        XCTAssertEqual(PathBytes.display([UInt8]("é/日本/🙂")), "é/日本/🙂")
        XCTAssertEqual(PathBytes.display([0x66, 0xFF, 0x6F]), "f\\xFFo")
        XCTAssertEqual(PathBytes.display([UInt8]("a\nb")), "a\\nb")
        XCTAssertEqual(PathBytes.display([UInt8]("tab\there\r")), "tab\\there\\r")
        XCTAssertEqual(PathBytes.display([UInt8]("back\\slash")), "back\\\\slash")
        XCTAssertEqual(PathBytes.display([0x1B, 0x5B, 0x33, 0x31, 0x6D, 0x7F]), "\\x1B[31m\\x7F")
        XCTAssertEqual(PathBytes.display([0xC2, 0x9B]), "\\xC2\\x9B", "C1 controls are escaped")
        XCTAssertEqual(PathBytes.display([0xC0, 0xAF]), "\\xC0\\xAF", "overlong form")
        XCTAssertEqual(PathBytes.display([0xED, 0xA0, 0x80]), "\\xED\\xA0\\x80", "surrogate")
        XCTAssertEqual(PathBytes.display([0xF4, 0x90, 0x80, 0x80]), "\\xF4\\x90\\x80\\x80", "above U+10FFFF")
        XCTAssertEqual(PathBytes.display([0xE6, 0x97, 0x41]), "\\xE6\\x97A", "truncated sequence")
        XCTAssertEqual(PathBytes.display([0xE6, 0x97]), "\\xE6\\x97", "truncated at the end")
        XCTAssertEqual(PathBytes.display([]), "")
    }

    func testJoinComponentsAndParent() {
        XCTAssertEqual(PathBytes.join([UInt8]("/a"), [UInt8]("b")), [UInt8]("/a/b"))
        XCTAssertEqual(PathBytes.join([UInt8]("/a/"), [UInt8]("/b/c")), [UInt8]("/a/b/c"))
        XCTAssertEqual(PathBytes.join([UInt8]("/"), [UInt8]("b")), [UInt8]("/b"))
        XCTAssertEqual(PathBytes.join([UInt8]("/target"), [UInt8]("/home/x")), [UInt8]("/target/home/x"))
        XCTAssertEqual(PathBytes.join([], [UInt8]("b")), [UInt8]("b"))
        XCTAssertEqual(PathBytes.join([UInt8]("a"), []), [UInt8]("a"))
        XCTAssertEqual(PathBytes.join([0xFF], [0x0A]), [0xFF, 0x2F, 0x0A])
        XCTAssertEqual(PathBytes.components([UInt8]("/a//b/c/")), [[UInt8]("a"), [UInt8]("b"), [UInt8]("c")])
        XCTAssertEqual(PathBytes.components([UInt8]("/")), [])
        XCTAssertEqual(PathBytes.components([UInt8]("rel/\n")), [[UInt8]("rel"), [0x0A]])
        XCTAssertEqual(PathBytes.parent([UInt8]("/a/b")), [UInt8]("/a"))
        XCTAssertEqual(PathBytes.parent([UInt8]("/a/b//")), [UInt8]("/a"))
        XCTAssertEqual(PathBytes.parent([UInt8]("/a")), [UInt8]("/"))
        XCTAssertEqual(PathBytes.parent([UInt8]("a")), [UInt8]("."))
        XCTAssertEqual(PathBytes.lastComponent([UInt8]("/a/b/")), [UInt8]("b"))
        XCTAssertEqual(PathBytes.lastComponent([UInt8]("/")), [UInt8]("/"))
    }
}

final class AccountsTests: XCTestCase {
    func testRootUserAndGroup() {
        XCTAssertEqual(Accounts.userName(uid: 0), "root")
        XCTAssertEqual(Accounts.groupName(gid: 0), "root")
        XCTAssertEqual(Accounts.uid(forUserName: "root"), 0)
        XCTAssertEqual(Accounts.gid(forGroupName: "root"), 0)
        // Cached answers are the same.
        XCTAssertEqual(Accounts.userName(uid: 0), "root")
        XCTAssertEqual(Accounts.uid(forUserName: "root"), 0)
    }

    func testUnknownNamesAndIds() {
        XCTAssertNil(Accounts.userName(uid: 3_999_999_999))
        XCTAssertNil(Accounts.groupName(gid: 3_999_999_999))
        XCTAssertNil(Accounts.uid(forUserName: "polyad-no-such-user"))
        XCTAssertNil(Accounts.gid(forGroupName: "polyad-no-such-group"))
        XCTAssertNil(Accounts.userName(uid: 3_999_999_999), "a cached miss stays a miss")
    }

    func testHostAndCurrentUser() {
        var buffer = [CChar](repeating: 0, count: 256)
        XCTAssertEqual(gethostname(&buffer, 255), 0)
        let expected = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        XCTAssertEqual(Accounts.hostName, expected)
        XCTAssertFalse(Accounts.hostName.isEmpty)
        let uid = UInt32(geteuid())
        XCTAssertEqual(Accounts.currentUserName, Accounts.userName(uid: uid) ?? String(uid))
    }

    func testConcurrentLookups() {
        DispatchQueue.concurrentPerform(iterations: 16) { index in
            XCTAssertEqual(Accounts.userName(uid: 0), "root")
            XCTAssertEqual(Accounts.gid(forGroupName: "root"), 0)
            XCTAssertNil(Accounts.userName(uid: 3_000_000_000 + UInt32(index)))
        }
    }
}
