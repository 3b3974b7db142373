/* The table of API error codes and HTTP statuses declared in errors.h. */
#include "errors.h"

static const struct {
    const char *code;
    unsigned http_status;
} error_table[API_ERROR_COUNT] = {
    [API_OK] = {"ok", 200},
    [API_BAD_JSON] = {"bad_json", 400},
    [API_UNKNOWN_FIELD] = {"unknown_field", 400},
    [API_INVALID_FIELD] = {"invalid_field", 400},
    [API_MISSING_FIELD] = {"missing_field", 400},
    [API_INVALID_BASE64] = {"invalid_base64", 400},
    [API_INVALID_IMAGE] = {"invalid_image", 422},
    [API_IMAGE_TOO_LARGE] = {"image_too_large", 413},
    [API_BAD_REQUEST] = {"bad_request", 400},
    [API_UNAUTHORIZED] = {"unauthorized", 401},
    [API_NOT_FOUND] = {"not_found", 404},
    [API_ITEM_NOT_FOUND] = {"item_not_found", 404},
    [API_SESSION_NOT_FOUND] = {"session_not_found", 404},
    [API_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
    [API_BODY_TOO_LARGE] = {"body_too_large", 413},
    [API_URI_TOO_LONG] = {"uri_too_long", 414},
    [API_UNSUPPORTED_MEDIA] = {"unsupported_media_type", 415},
    [API_RATE_LIMITED] = {"rate_limited", 429},
    [API_OVERLOADED] = {"overloaded", 503},
    [API_NOT_READY] = {"not_ready", 503},
    [API_UNAVAILABLE] = {"unavailable", 501},
    [API_SHUTTING_DOWN] = {"shutting_down", 503},
    [API_INTERNAL] = {"internal", 500},
};

const char *api_error_code(api_error e) {
    return e >= 0 && e < API_ERROR_COUNT ? error_table[e].code : "internal";
}

unsigned api_error_http_status(api_error e) {
    return e >= 0 && e < API_ERROR_COUNT ? error_table[e].http_status : 500;
}

api_error api_error_from_status(tl_status s) {
    switch (s) {
        case TL_OK:
            return API_OK;
        case TL_ERR_INVALID:
            return API_INVALID_FIELD;
        case TL_ERR_FORMAT:
            return API_INVALID_IMAGE;
        case TL_ERR_LIMIT:
            return API_IMAGE_TOO_LARGE;
        case TL_ERR_NOT_FOUND:
            return API_ITEM_NOT_FOUND;
        case TL_ERR_UNAVAILABLE:
        case TL_ERR_UNSUPPORTED:
            return API_UNAVAILABLE;
        default:
            return API_INTERNAL;
    }
}
