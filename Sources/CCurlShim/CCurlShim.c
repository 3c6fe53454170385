#include "CCurlShim.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int polyad_http_global_init(void) { return (int)curl_global_init(CURL_GLOBAL_DEFAULT); }

void *polyad_http_new(void) { return curl_easy_init(); }

void polyad_http_free(void *handle) {
    if (handle != NULL) curl_easy_cleanup((CURL *)handle);
}

typedef struct growing {
    unsigned char **data;
    size_t *length;
    size_t capacity;
} growing;

static size_t polyad_append(growing *g, const char *bytes, size_t n) {
    if (*g->length + n + 1 > g->capacity) {
        size_t wanted = g->capacity ? g->capacity : 16384;
        while (wanted < *g->length + n + 1) wanted *= 2;
        unsigned char *grown = realloc(*g->data, wanted);
        if (grown == NULL) return 0;  // libcurl then fails the transfer (CURLE_WRITE_ERROR)
        *g->data = grown;
        g->capacity = wanted;
    }
    memcpy(*g->data + *g->length, bytes, n);
    *g->length += n;
    (*g->data)[*g->length] = 0;
    return n;
}

static size_t polyad_write(char *bytes, size_t size, size_t count, void *context) {
    return polyad_append((growing *)context, bytes, size * count);
}

typedef struct reading {
    const unsigned char *data;
    size_t length;
    size_t offset;
} reading;

static size_t polyad_read(char *buffer, size_t size, size_t count, void *context) {
    reading *r = context;
    size_t n = size * count;
    if (n > r->length - r->offset) n = r->length - r->offset;
    memcpy(buffer, r->data + r->offset, n);
    r->offset += n;
    return n;
}

static int polyad_seek(void *context, curl_off_t offset, int origin) {
    reading *r = context;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > r->length) return CURL_SEEKFUNC_CANTSEEK;
    r->offset = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

int polyad_http_perform(void *handle, const char *method, const char *url, const char *const *headers,
                        size_t header_count, const unsigned char *body, size_t body_length, long timeout_seconds,
                        long low_speed_seconds, polyad_http_response *out) {
    CURL *curl = handle;
    memset(out, 0, sizeof(*out));
    curl_easy_reset(curl);  // options back to defaults; the connection cache stays
    growing body_sink = {&out->body, &out->body_length, 0};
    growing header_sink = {(unsigned char **)&out->headers, &out->headers_length, 0};
    reading source = {body, body_length, 0};
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < header_count; i++) list = curl_slist_append(list, headers[i]);
    list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
    if (strcmp(method, "POST") == 0) {
        // Without this libcurl labels a POST body form data (application/x-www-form-urlencoded), and a server may
        // read it as a form: moto then sees CompleteMultipartUpload's XML as an empty body.
        int typed = 0;
        for (size_t i = 0; i < header_count; i++) typed |= strncasecmp(headers[i], "Content-Type:", 13) == 0;
        if (!typed) list = curl_slist_append(list, "Content-Type:");
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, polyad_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body_sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, polyad_write);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &header_sink);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, out->error);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, low_speed_seconds);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, polyad_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &source);
        curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, polyad_seek);
        curl_easy_setopt(curl, CURLOPT_SEEKDATA, &source);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_length);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body != NULL ? (const char *)body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_length);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode code = curl_easy_perform(curl);
    out->curl_code = (int)code;
    if (code != CURLE_OK && out->error[0] == 0) {
        strncpy(out->error, curl_easy_strerror(code), sizeof(out->error) - 1);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(list);
    return out->curl_code;
}

void polyad_http_response_free(polyad_http_response *out) {
    free(out->body);
    free(out->headers);
    out->body = NULL;
    out->headers = NULL;
}
