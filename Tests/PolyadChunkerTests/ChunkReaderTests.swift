import Glibc
import PolyadTestSupport
import XCTest

@testable import PolyadChunker

final class ChunkReaderTests: XCTestCase {
    private var folder: TemporaryFolder!
    private var directory: String { folder.path }

    override func setUpWithError() throws {
        folder = try TemporaryFolder(prefix: "polyad-chunker-test")
    }

    override func tearDown() {
        folder.remove()
    }

    /// Writes `data` to a new file and returns a read-only descriptor for it.
    private func makeFile(_ name: String, _ data: [UInt8]) throws -> Int32 {
        let path = directory + "/" + name
        let writer = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        XCTAssertGreaterThanOrEqual(writer, 0)
        let written = data.withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
        XCTAssertEqual(written, data.count)
        close(writer)
        let reader = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(reader, 0)
        return reader
    }

    private func readAll(_ reader: ChunkReader) throws -> [[UInt8]] {
        var result: [[UInt8]] = []
        while let chunk = try reader.next() {
            result.append(chunk)
        }
        XCTAssertNil(try reader.next(), "the reader stays at its end")
        return result
    }

    func testReaderMatchesInMemoryChunking() throws {
        let data = pseudoRandomBytes(count: (3 << 20) + 4321, seed: 21)
        let fd = try makeFile("whole", data)
        defer { close(fd) }
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let expected = chunks(chunker, data).map { Array($0) }
        // A minimal buffer forces many refills; the default one reads the file at once.
        for bufferSize in [0, 200_000, ChunkReader.defaultBufferSize] {
            let reader = ChunkReader(
                fileDescriptor: fd,
                offset: 0,
                length: Int64(data.count),
                chunker: chunker,
                bufferSize: bufferSize
            )
            XCTAssertEqual(try readAll(reader), expected, "buffer size \(bufferSize)")
        }
    }

    func testReaderOverARangeMatchesChunkingTheSlice() throws {
        let data = pseudoRandomBytes(count: 2 << 20, seed: 22)
        let fd = try makeFile("range", data)
        defer { close(fd) }
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let offset = 12_345
        let length = 1_000_001
        let slice = Array(data[offset..<offset + length])
        let reader = ChunkReader(
            fileDescriptor: fd,
            offset: Int64(offset),
            length: Int64(length),
            chunker: chunker,
            bufferSize: 150_000
        )
        let read = try readAll(reader)
        XCTAssertEqual(read, chunks(chunker, slice).map { Array($0) })
        XCTAssertEqual(Array(read.joined()), slice)
    }

    func testReaderStopsAtEndOfFileWhenTheFileIsShorterThanTheRange() throws {
        let data = pseudoRandomBytes(count: 300_000, seed: 23)
        let fd = try makeFile("short", data)
        defer { close(fd) }
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let reader = ChunkReader(
            fileDescriptor: fd,
            offset: 100,
            length: 10_000_000,
            chunker: chunker,
            bufferSize: 0
        )
        let read = try readAll(reader)
        XCTAssertEqual(Array(read.joined()), Array(data[100...]))
        XCTAssertEqual(read, chunks(chunker, Array(data[100...])).map { Array($0) })
    }

    func testEmptyRangeYieldsNothing() throws {
        let fd = try makeFile("empty", [])
        defer { close(fd) }
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        XCTAssertNil(try ChunkReader(fileDescriptor: fd, offset: 0, length: 0, chunker: chunker).next())
        XCTAssertNil(try ChunkReader(fileDescriptor: fd, offset: 0, length: 1000, chunker: chunker).next())
    }

    func testReadErrorCarriesErrno() throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let reader = ChunkReader(fileDescriptor: fd, offset: 0, length: 4096, chunker: chunker)
        do {
            _ = try reader.next()
            XCTFail("reading a directory must fail")
        } catch {
            XCTAssertEqual(error.errno, EISDIR)
            XCTAssertTrue(error.description.hasPrefix("read at offset 0: Is a directory"), error.description)
        }
    }
}
