from ragqa.service.guard import validation_message


def test_invalid_json_is_said_in_words_with_where():
    errors = [{"type": "json_invalid", "loc": ("body", 16), "msg": "JSON decode error"}]
    assert validation_message(errors) == "the request body is not valid JSON (at character 16)"
    assert validation_message([{"type": "missing", "loc": ("body", "question"), "msg": "Field required"}]) == \
        "question: Field required"
