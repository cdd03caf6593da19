"""The API's OpenAPI description, served at /v1/openapi.json and fuzzed by schemathesis in the
tests (tests/test_api_schema.py). Written by hand, next to nothing: the bounds come from
settings, so the description always says what this server accepts."""

from django.conf import settings

from assistant import endpoints


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def error_response(description: str, headers: dict | None = None) -> dict:
    response: dict = {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


ERRORS = {
    "401": error_response("No token, or one that is unknown, revoked or expired."),
    "403": error_response(
        "The token's owner is deactivated, or (model_not_allowed) the policy keeps the model "
        "named from the token's collections."
    ),
    "405": error_response("Another method than the one this path takes."),
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}}

TEXT = {"type": "string"}
EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "description": (
                "A chat.completion.chunk as JSON (the last with finish_reason, sources and "
                'grounding on its delta), {"error": …} if the answer failed, or [DONE].'
            ),
        }
    },
}


def description() -> dict:
    part = {"type": "object", "properties": {"type": TEXT, "text": TEXT}}
    content = {
        "oneOf": [
            TEXT,
            {"type": "array", "items": part, "description": "Only text parts are read."},
            {"type": "null"},
        ],
    }
    roles = ["system", "developer", "user", "assistant", "tool", "function"]
    message = {
        "type": "object",
        "required": ["role"],
        "properties": {"role": {"type": "string", "enum": roles}, "content": content},
    }
    said = {"type": "string", "pattern": r"\S"}  # not blank
    question = {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"const": "user"},
            "content": {
                "oneOf": [
                    said,
                    {
                        "type": "array",
                        "items": part,
                        "contains": {
                            "type": "object",
                            "required": ["text"],
                            "properties": {"text": said},
                        },
                    },
                ]
            },
        },
    }
    request = {
        "type": "object",
        "required": ["model", "messages"],
        "description": (
            "The last user message with text is the question; the user and assistant messages "
            "before it are the conversation. System, developer and tool messages, and any "
            "after the question, are recorded and not obeyed. Other fields (top_p, tools, "
            "filters, collection ids) are ignored and recorded, at most 20, each cut to 200 "
            "characters: the token decides what is searched, and its collections which "
            "models may read them (GET /v1/models)."
        ),
        "properties": {
            # Served without a token, so the registry's own names are not listed here (and
            # the fuzzing keeps to names that reach an answer).
            "model": {
                "type": "string",
                "enum": [settings.LLM_NAME, endpoints.AUTO],
                "description": (
                    f"{settings.LLM_NAME} is the built-in, on-premises model; auto sends hard "
                    "questions to a larger allowed model. A token may also name the other "
                    "models GET /v1/models lists for it. A restricted collection in the "
                    "token's scope allows on-premises models only."
                ),
            },
            "messages": {"type": "array", "items": message, "contains": question},
            "stream": {"type": ["boolean", "null"]},
            "stream_options": {
                "type": ["object", "null"],
                "properties": {"include_usage": {"type": "boolean"}},
            },
            "max_tokens": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": settings.API_MAX_TOKENS,
            },
            "max_completion_tokens": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": settings.API_MAX_TOKENS,
            },
            "temperature": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": settings.API_MAX_TEMPERATURE,
            },
        },
    }
    source = {
        "type": "object",
        "required": ["n", "document_id", "title", "collection", "page", "chunk", "score", "text"],
        "properties": {
            "n": {"type": "integer", "description": "The number the answer's [n] markers use."},
            "document_id": {"type": "integer"},
            "title": TEXT,
            "collection": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "page": {"type": "integer"},
            "chunk": {"type": "integer"},
            "score": {"type": "number"},
            "text": {"type": "string", "description": "The passage itself."},
            "url": {"type": "string", "description": "The page, passage marked (sign-in)."},
        },
    }
    checks = {
        "type": "object",
        "properties": {
            "relevant": {"type": "boolean", "description": "Something relevant was found."},
            "checked": {"type": "boolean", "description": "The answer was checked."},
            "cited": {"type": "array", "items": {"type": "integer"}},
            "dangling": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "Citations of no source: removed from the non-streamed content.",
            },
            "unsupported": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sentence": TEXT,
                        "values": {"type": "array", "items": TEXT},
                    },
                },
            },
        },
    }
    completion = {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": TEXT,
            "object": {"type": "string", "enum": ["chat.completion"]},
            "created": {"type": "integer"},
            "model": TEXT,
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "message", "finish_reason"],
                    "properties": {
                        "index": {"type": "integer"},
                        "finish_reason": {"type": "string", "enum": ["stop", "length"]},
                        "message": {
                            "type": "object",
                            "required": ["role", "content", "sources", "grounding"],
                            "properties": {
                                "role": {"type": "string", "enum": ["assistant"]},
                                "content": TEXT,
                                "sources": {"type": "array", "items": ref("Source")},
                                "grounding": ref("Grounding"),
                            },
                        },
                    },
                },
            },
            "usage": {
                "type": "object",
                "properties": {
                    "prompt_tokens": {"type": "integer"},
                    "completion_tokens": {"type": "integer"},
                    "total_tokens": {"type": "integer"},
                },
            },
        },
    }
    model = {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": TEXT,
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer"},
            "owned_by": TEXT,
        },
    }
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": TEXT,
                    "type": TEXT,
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Enclave API",
            "version": "1",
            "description": (
                "OpenAI-compatible answers from your documents, with their sources. "
                "Authenticate with a personal access token: Authorization: Bearer enc_…"
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"token": []}],
        "paths": {
            "/v1/chat/completions": {
                "post": {
                    "operationId": "createChatCompletion",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("ChatCompletionRequest")}},
                    },
                    "responses": {
                        "200": {
                            "description": (
                                "The answer; with stream: OpenAI's chunks as server-sent "
                                "events, the last carrying sources and grounding, then [DONE]."
                            ),
                            "content": {
                                "application/json": {"schema": ref("ChatCompletion")},
                                # In OpenAPI 3.1, the schema of one event.
                                "text/event-stream": {"schema": EVENT},
                            },
                        },
                        "400": error_response("A malformed request, or a value out of bounds."),
                        **ERRORS,
                        "404": error_response("An unknown model."),
                        "429": error_response(
                            "Too many requests, or (insufficient_quota) a group of the "
                            "token's owner has spent its monthly token budget; Retry-After "
                            "says when to ask again (for a budget: the next month).",
                            RETRY_AFTER,
                        ),
                        "503": error_response("The language model is unavailable."),
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "responses": {
                        "200": {
                            "description": (
                                "The models the token may use over its collections now, the "
                                "built-in first; auto when one of them takes hard questions."
                            ),
                            "content": {"application/json": {"schema": ref("ModelList")}},
                        },
                        **ERRORS,
                    },
                }
            },
            "/v1/models/{model}": {
                "get": {
                    "operationId": "retrieveModel",
                    "parameters": [
                        {"name": "model", "in": "path", "required": True, "schema": TEXT}
                    ],
                    "responses": {
                        "200": {
                            "description": "The model.",
                            "content": {"application/json": {"schema": ref("Model")}},
                        },
                        **ERRORS,
                        "404": error_response("An unknown model."),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "ChatCompletionRequest": request,
                "ChatCompletion": completion,
                "Source": source,
                "Grounding": checks,
                "Model": model,
                "ModelList": {
                    "type": "object",
                    "required": ["object", "data"],
                    "properties": {
                        "object": {"type": "string", "enum": ["list"]},
                        "data": {"type": "array", "items": ref("Model")},
                    },
                },
                "Error": error,
            },
        },
    }
