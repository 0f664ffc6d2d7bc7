package dev.fastdms.cli.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * An error answered as the OpenAI API does: an HTTP status and {@code {"error": {"message", "type", "param",
 * "code"}}}, where {@code param} names the offending request field.
 */
public final class ApiError extends RuntimeException {
    private final int status;
    private final String type, param, code;

    public ApiError(int status, String type, String param, String code, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400: a malformed body or a bad field. */
    public static ApiError badField(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, param == null ? null : "invalid_value", message);
    }

    public int status() { return status; }

    public ObjectNode toJson(ObjectMapper om) {
        ObjectNode root = om.createObjectNode();
        ObjectNode e = root.putObject("error");
        e.put("message", getMessage());
        e.put("type", type);
        e.put("param", param);
        e.put("code", code);
        return root;
    }
}
