#ifndef C_CURL_SHIM
#define C_CURL_SHIM

#include <stddef.h>

// One HTTP request on a libcurl easy handle. Why a shim: curl_easy_setopt and curl_easy_getinfo are variadic,
// and the callbacks need C function pointers. Plain C types only: <curl/curl.h> stays in the .c file.

/// What a request got back. `body` and `headers` are malloc'd by the shim; free them with
/// `polyad_http_response_free`.
typedef struct polyad_http_response {
    long status;              // the HTTP status, 0 if none came
    int curl_code;            // CURLcode: 0 when the transfer itself worked (whatever the status)
    char error[256];          // libcurl's message when curl_code != 0
    unsigned char *body;
    size_t body_length;
    char *headers;            // the response header lines, as received
    size_t headers_length;
} polyad_http_response;

/// Starts libcurl (once per process, before threads).
int polyad_http_global_init(void);
/// A new easy handle (connections to a host are kept open in it and reused); NULL if libcurl fails.
void *polyad_http_new(void);
void polyad_http_free(void *handle);

/// Performs `method` on `url` with `header_count` header lines (`Name: value`), sending `body` (may be NULL)
/// and filling `out`. Not thread-safe per handle. `timeout_seconds` bounds the whole transfer (0: none); a
/// transfer slower than 1 byte/s for `low_speed_seconds` is cut. Returns `out->curl_code`.
int polyad_http_perform(void *handle, const char *method, const char *url, const char *const *headers,
                        size_t header_count, const unsigned char *body, size_t body_length, long timeout_seconds,
                        long low_speed_seconds, polyad_http_response *out);

void polyad_http_response_free(polyad_http_response *out);

#endif
