#ifndef HERALD_CCURL_H
#define HERALD_CCURL_H

#include <curl/curl.h>
#include <stddef.h>

/// Typed wrappers around libcurl's variadic setopt/getinfo functions, which Swift cannot call.
/// Each returns the libcurl result code.

typedef size_t (*hc_data_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);

CURLcode hc_easy_setopt_long(CURL *easy, CURLoption option, long value);
CURLcode hc_easy_setopt_off_t(CURL *easy, CURLoption option, curl_off_t value);
/// For string options; libcurl copies the string for all options used here.
CURLcode hc_easy_setopt_str(CURL *easy, CURLoption option, const char *value);
CURLcode hc_easy_setopt_ptr(CURL *easy, CURLoption option, void *value);
CURLcode hc_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value);
CURLcode hc_easy_setopt_write_cb(CURL *easy, hc_data_cb callback);
CURLcode hc_easy_setopt_header_cb(CURL *easy, hc_data_cb callback);
/// CURLOPT_READFUNCTION: supplies an upload body (an SMTP message) piece by piece.
CURLcode hc_easy_setopt_read_cb(CURL *easy, hc_data_cb callback);
/// Sets the request body: CURLOPT_POSTFIELDSIZE_LARGE then CURLOPT_COPYPOSTFIELDS (libcurl copies the bytes).
CURLcode hc_easy_set_body(CURL *easy, const void *bytes, size_t length);

CURLMcode hc_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

CURLcode hc_easy_getinfo_long(CURL *easy, CURLINFO info, long *out);
CURLcode hc_easy_getinfo_double(CURL *easy, CURLINFO info, double *out);
CURLcode hc_easy_getinfo_off_t(CURL *easy, CURLINFO info, curl_off_t *out);
CURLcode hc_easy_getinfo_ptr(CURL *easy, CURLINFO info, void **out);

/// CURLMsg field access (the result lives in a union).
int hc_msg_is_done(const CURLMsg *msg);
CURLcode hc_msg_result(const CURLMsg *msg);
CURL *hc_msg_easy(const CURLMsg *msg);

/// curl_global_init(CURL_GLOBAL_ALL), run at most once per process (pthread_once). Returns its result.
CURLcode hc_global_init_once(void);

/// A share handle that shares TLS session ids between easy handles. All users must run on one thread
/// (no lock callbacks are installed). NULL on failure.
CURLSH *hc_share_new_ssl_sessions(void);

/// Size libcurl requires for CURLOPT_ERRORBUFFER.
static inline size_t hc_error_size(void) { return CURL_ERROR_SIZE; }

#endif
