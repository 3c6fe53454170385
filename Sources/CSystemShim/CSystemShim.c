#define _GNU_SOURCE
#include "CSystemShim.h"
#include <malloc.h>
#include <spawn.h>

void polyad_limit_malloc_caching(void) {
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    mallopt(M_ARENA_MAX, 2);
}

void polyad_keep_freed_heap(void) {
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

short polyad_posix_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }

#include <fcntl.h>
#include <stdio.h>
#include <sys/xattr.h>
#include <unistd.h>

int polyad_open_path_flag(void) { return O_PATH; }
int polyad_at_empty_path_flag(void) { return AT_EMPTY_PATH; }
unsigned int polyad_rename_noreplace_flag(void) { return RENAME_NOREPLACE; }
unsigned int polyad_rename_exchange_flag(void) { return RENAME_EXCHANGE; }

int polyad_renameat2(int olddirfd, const char *oldname, int newdirfd, const char *newname, unsigned int flags) {
    return renameat2(olddirfd, oldname, newdirfd, newname, flags);
}

int polyad_fallocate(int fd, int mode, long long offset, long long length) {
    return fallocate(fd, mode, (off_t)offset, (off_t)length);
}

int polyad_syncfs(int fd) { return syncfs(fd); }

long polyad_getxattr(const char *path, const char *name, void *value, unsigned long size, int follow) {
    return follow ? getxattr(path, name, value, size) : lgetxattr(path, name, value, size);
}

long polyad_listxattr(const char *path, char *list, unsigned long size, int follow) {
    return follow ? listxattr(path, list, size) : llistxattr(path, list, size);
}

int polyad_setxattr(const char *path, const char *name, const void *value, unsigned long size, int flags,
                    int follow) {
    return follow ? setxattr(path, name, value, size, flags) : lsetxattr(path, name, value, size, flags);
}

int polyad_removexattr(const char *path, const char *name, int follow) {
    return follow ? removexattr(path, name) : lremovexattr(path, name);
}

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>

static int reload_pipe[2] = {-1, -1};

static void reload_handler(int signo) {
    (void)signo;
    int saved = errno;
    char byte = 'r';
    if (reload_pipe[1] >= 0) (void)!write(reload_pipe[1], &byte, 1);
    errno = saved;
}

int polyad_reload_signal_install(int signo) {
    if (reload_pipe[0] < 0 && pipe2(reload_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    // The read end blocks; the handler's write end must not.
    int flags = fcntl(reload_pipe[0], F_GETFL);
    fcntl(reload_pipe[0], F_SETFL, flags & ~O_NONBLOCK);
    struct sigaction sa;
    sa.sa_handler = reload_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(signo, &sa, NULL);
}

int polyad_reload_signal_wait(void) {
    char byte;
    for (;;) {
        ssize_t n = read(reload_pipe[0], &byte, 1);
        if (n == 1) return byte == 'r' ? 1 : 0;
        if (n < 0 && errno == EINTR) continue;
        return 0;
    }
}

void polyad_reload_signal_stop(void) {
    char byte = 'q';
    if (reload_pipe[1] >= 0) (void)!write(reload_pipe[1], &byte, 1);
}

int polyad_disable_core_dumps(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }
