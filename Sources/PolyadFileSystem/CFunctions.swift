import Glibc

// C functions that Swift's Glibc module does not import, or cannot call by name from inside `FileSystem`.

/// `lstat(2)` by name: inside `FileSystem`, `stat`/`lstat` name the Swift wrappers, and `Glibc.stat(...)`
/// resolves to the struct's initializer instead of the function.
func systemLstat(_ path: UnsafePointer<CChar>, _ status: UnsafeMutablePointer<stat>) -> Int32 {
    lstat(path, status)
}

/// `stat(2)` by name (see `systemLstat`).
func systemStat(_ path: UnsafePointer<CChar>, _ status: UnsafeMutablePointer<stat>) -> Int32 {
    stat(path, status)
}

/// `statvfs(3)` by name (see `systemLstat`).
func systemStatvfs(_ path: UnsafePointer<CChar>, _ info: UnsafeMutablePointer<statvfs>) -> Int32 {
    statvfs(path, info)
}

/// The extended attribute calls of `<sys/xattr.h>`.
///
/// Swift's Glibc module map does not include `<sys/xattr.h>`, and this module may not add a C target, so the
/// functions are looked up once in the C library with `dlsym` and called through C function pointers with
/// the exact prototypes from the header. If the C library lacks them, every call fails with `ENOTSUP`.
struct ExtendedAttributeFunctions: Sendable {
    /// `ssize_t llistxattr(const char *path, char *list, size_t size)`
    typealias List = @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?, Int) -> Int
    /// `ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)`
    typealias Get = @convention(c) (UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?, Int) -> Int
    /// `int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)`
    typealias Set =
        @convention(c) (UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafeRawPointer?, Int, Int32)
        -> Int32

    let list: List?
    let get: Get?
    let set: Set?

    static let shared: ExtendedAttributeFunctions = {
        let library = dlopen(nil, RTLD_NOW)
        func symbol(_ name: String) -> UnsafeMutableRawPointer? {
            library.flatMap { dlsym($0, name) }
        }
        return ExtendedAttributeFunctions(
            list: symbol("llistxattr").map { unsafeBitCast($0, to: List.self) },
            get: symbol("lgetxattr").map { unsafeBitCast($0, to: Get.self) },
            set: symbol("lsetxattr").map { unsafeBitCast($0, to: Set.self) }
        )
    }()

    func llistxattr(_ path: UnsafePointer<CChar>, _ list: UnsafeMutableRawPointer?, _ size: Int) -> Int {
        guard let function = self.list else {
            errno = ENOTSUP
            return -1
        }
        return function(path, list?.assumingMemoryBound(to: CChar.self), size)
    }

    func lgetxattr(
        _ path: UnsafePointer<CChar>,
        _ name: UnsafePointer<CChar>,
        _ value: UnsafeMutableRawPointer?,
        _ size: Int
    ) -> Int {
        guard let function = get else {
            errno = ENOTSUP
            return -1
        }
        return function(path, name, value, size)
    }

    func lsetxattr(
        _ path: UnsafePointer<CChar>,
        _ name: UnsafePointer<CChar>,
        _ value: UnsafeRawPointer?,
        _ size: Int,
        _ flags: Int32
    ) -> Int32 {
        guard let function = set else {
            errno = ENOTSUP
            return -1
        }
        return function(path, name, value, size, flags)
    }
}
