/// An error from PolyadCrypto: a ``Code`` saying what kind of failure it is, and a detail saying what failed.
///
/// Two errors are equal when their codes are equal, so `catch CryptoError.authenticationFailed` matches
/// whatever the detail says.
public struct CryptoError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure. New codes may be added; do not switch over them exhaustively.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// Authenticated decryption failed: the data was damaged or modified, or the key is wrong.
        public static let authenticationFailed = Code("authenticationFailed")
        /// Key derivation (scrypt) failed, usually because of bad parameters or too little memory.
        public static let kdfFailed = Code("kdfFailed")
        /// The system's cryptographic random number generator failed.
        public static let randomFailed = Code("randomFailed")
        /// Another OpenSSL call failed.
        public static let openssl = Code("openssl")

        /// The code's name, for logs.
        public var description: String { name }
    }

    /// The kind of failure.
    public let code: Code
    /// What failed, in words; empty when the code says it all.
    public let detail: String

    /// Makes an error with `code` and `detail`.
    public init(code: Code, detail: String = "") {
        self.code = code
        self.detail = detail
    }

    /// The data is damaged or the key is wrong: the authentication tag did not match.
    public static let authenticationFailed = CryptoError(code: .authenticationFailed)
    /// Key derivation failed (no detail); use ``kdfFailed(_:)`` to say which parameter was wrong.
    public static let kdfFailed = CryptoError(code: .kdfFailed)
    /// The random number generator failed (no detail).
    public static let randomFailed = CryptoError(code: .randomFailed)
    /// An OpenSSL call failed (no detail).
    public static let openssl = CryptoError(code: .openssl)

    /// Key derivation failed; `detail` names the parameters or the reason.
    public static func kdfFailed(_ detail: String) -> CryptoError { CryptoError(code: .kdfFailed, detail: detail) }
    /// The random number generator failed; `detail` is OpenSSL's reason.
    public static func randomFailed(_ detail: String) -> CryptoError {
        CryptoError(code: .randomFailed, detail: detail)
    }
    /// An OpenSSL call failed; `detail` says which call and OpenSSL's reason.
    public static func openssl(_ detail: String) -> CryptoError { CryptoError(code: .openssl, detail: detail) }

    /// A message for the user that says what happened and what to do.
    public var description: String {
        let what = detail.isEmpty ? "" : " (\(detail))"
        switch code {
        case .authenticationFailed:
            return "data damaged or wrong key: authentication failed\(what). The data was changed after it was "
                + "written, or it was encrypted with another key; check the passphrase or key, or restore "
                + "the damaged object from another copy of the repository."
        case .kdfFailed:
            return "key derivation failed\(what). Check the scrypt parameters (N a power of two of at least 2, "
                + "r and p at least 1, r * p below 2^30) and that the machine has enough free memory."
        case .randomFailed:
            return "the system's random number generator failed\(what). Check that getrandom() and "
                + "/dev/urandom work on this machine."
        default:
            return "OpenSSL failed\(what). This points to a broken or unsupported libcrypto; install "
                + "OpenSSL 3 (libssl3) and try again."
        }
    }

    /// Errors are equal when their codes are equal; the detail is not compared.
    public static func == (lhs: CryptoError, rhs: CryptoError) -> Bool { lhs.code == rhs.code }

    /// Lets `catch CryptoError.authenticationFailed` match an untyped error by code.
    public static func ~= (pattern: CryptoError, value: any Error) -> Bool {
        (value as? CryptoError)?.code == pattern.code
    }
}
