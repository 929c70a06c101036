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
/// CURLOPT_READFUNCTION: supplies an upload body (an SMTP message, an HTTP request's body) piece by piece.
CURLcode hc_easy_setopt_read_cb(CURL *easy, hc_data_cb callback);
/// CURLOPT_SEEKFUNCTION: libcurl asks to rewind an upload before sending it again (offset from
/// the start for SEEK_SET); answers CURL_SEEKFUNC_OK, _FAIL or _CANTSEEK.
typedef int (*hc_seek_cb)(void *userdata, curl_off_t offset, int origin);
CURLcode hc_easy_setopt_seek_cb(CURL *easy, hc_seek_cb callback);

CURLMcode hc_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

CURLcode hc_easy_getinfo_long(CURL *easy, CURLINFO info, long *out);
CURLcode hc_easy_getinfo_double(CURL *easy, CURLINFO info, double *out);
CURLcode hc_easy_getinfo_off_t(CURL *easy, CURLINFO info, curl_off_t *out);
CURLcode hc_easy_getinfo_ptr(CURL *easy, CURLINFO info, void **out);

/// CURLMsg field access (the result lives in a union).
int hc_msg_is_done(const CURLMsg *msg);
CURLcode hc_msg_result(const CURLMsg *msg);
CURL *hc_msg_easy(const CURLMsg *msg);

/// libcurl is loaded on first use (dlopen of libcurl.so.4), not linked. NULL when it is loaded,
/// else why it cannot be (no such library, or one too old).
const char *hc_load_problem(void);

/// Loads libcurl and runs curl_global_init(CURL_GLOBAL_ALL), at most once per process
/// (pthread_once). Returns its result (CURLE_FAILED_INIT when libcurl cannot be loaded). Every
/// function below needs it to have succeeded first.
CURLcode hc_global_init_once(void);

/// libcurl's own functions, through the loaded library (same arguments and results).
CURL *hc_easy_init(void);
void hc_easy_cleanup(CURL *easy);
void hc_easy_reset(CURL *easy);
/// Also answers before libcurl is loaded: then it says why it could not be.
const char *hc_easy_strerror(CURLcode code);
CURLM *hc_multi_init(void);
CURLMcode hc_multi_cleanup(CURLM *multi);
CURLMcode hc_multi_add_handle(CURLM *multi, CURL *easy);
CURLMcode hc_multi_remove_handle(CURLM *multi, CURL *easy);
CURLMcode hc_multi_perform(CURLM *multi, int *running);
/// curl_multi_poll with no extra descriptors.
CURLMcode hc_multi_poll(CURLM *multi, int timeout_ms, int *ready);
CURLMcode hc_multi_wakeup(CURLM *multi);
CURLMsg *hc_multi_info_read(CURLM *multi, int *remaining);
const char *hc_multi_strerror(CURLMcode code);
struct curl_slist *hc_slist_append(struct curl_slist *list, const char *line);
void hc_slist_free_all(struct curl_slist *list);
void hc_share_cleanup(CURLSH *share);

/// A share handle that shares TLS session ids between easy handles. All users must run on one thread
/// (no lock callbacks are installed). NULL on failure.
CURLSH *hc_share_new_ssl_sessions(void);

/// Size libcurl requires for CURLOPT_ERRORBUFFER.
static inline size_t hc_error_size(void) { return CURL_ERROR_SIZE; }

#endif
