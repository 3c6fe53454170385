#include "CSystemShim.h"
#include <malloc.h>

void polyad_limit_malloc_caching(void) {
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    mallopt(M_ARENA_MAX, 2);
}
