#include <curl/curl.h>
#include "ccurl.h"
#include <pthread.h>

static pthread_once_t hc_once = PTHREAD_ONCE_INIT;
static CURLcode hc_global_rc = CURLE_OK;

static void hc_do_global_init(void) {
    hc_global_rc = curl_global_init(CURL_GLOBAL_ALL);
}

CURLcode hc_global_init_once(void) {
    pthread_once(&hc_once, hc_do_global_init);
    return hc_global_rc;
}

CURLSH *hc_share_new_ssl_sessions(void) {
    CURLSH *share = curl_share_init();
    if (!share) return NULL;
    if (curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        curl_share_cleanup(share);
        return NULL;
    }
    return share;
}

CURLcode hc_easy_setopt_long(CURL *easy, CURLoption option, long value) {
    return curl_easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_off_t(CURL *easy, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_str(CURL *easy, CURLoption option, const char *value) {
    return curl_easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_ptr(CURL *easy, CURLoption option, void *value) {
    return curl_easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_write_cb(CURL *easy, hc_data_cb callback) {
    return curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, callback);
}

CURLcode hc_easy_setopt_header_cb(CURL *easy, hc_data_cb callback) {
    return curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, callback);
}

CURLcode hc_easy_setopt_read_cb(CURL *easy, hc_data_cb callback) {
    return curl_easy_setopt(easy, CURLOPT_READFUNCTION, callback);
}

CURLcode hc_easy_set_body(CURL *easy, const void *bytes, size_t length) {
    static const char empty[1] = {0};
    CURLcode rc = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)length);
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, length > 0 && bytes ? (const char *)bytes : empty);
}

CURLMcode hc_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

CURLcode hc_easy_getinfo_long(CURL *easy, CURLINFO info, long *out) {
    return curl_easy_getinfo(easy, info, out);
}

CURLcode hc_easy_getinfo_double(CURL *easy, CURLINFO info, double *out) {
    return curl_easy_getinfo(easy, info, out);
}

CURLcode hc_easy_getinfo_off_t(CURL *easy, CURLINFO info, curl_off_t *out) {
    return curl_easy_getinfo(easy, info, out);
}

CURLcode hc_easy_getinfo_ptr(CURL *easy, CURLINFO info, void **out) {
    return curl_easy_getinfo(easy, info, out);
}

int hc_msg_is_done(const CURLMsg *msg) {
    return msg && msg->msg == CURLMSG_DONE;
}

CURLcode hc_msg_result(const CURLMsg *msg) {
    return msg->data.result;
}

CURL *hc_msg_easy(const CURLMsg *msg) {
    return msg->easy_handle;
}
