"""Route templates match as the Functions host matches HTTP trigger routes."""

import pytest

from devhost.http.routes import RouteTemplate, RouteTemplateError, join_route


def test_literal_route_matches_case_insensitively_and_only_itself() -> None:
    template = RouteTemplate.parse("api/health")
    assert template.match("api/health") == {}
    assert template.match("API/Health") == {}
    assert template.match("api/health/extra") is None
    assert template.match("api") is None


def test_parameter_inside_a_segment_takes_the_text_before_the_literal() -> None:
    template = RouteTemplate.parse("api/plots/{sensor_id}.png")
    assert template.match("api/plots/sensor-01.png") == {"sensor_id": "sensor-01"}
    assert template.match("api/plots/room.1.png") == {"sensor_id": "room.1"}
    assert template.match("api/plots/.png") is None
    assert template.match("api/plots/a/b.png") is None


def test_site_root_route_matches_only_the_empty_path() -> None:
    template = RouteTemplate.parse(join_route("", "{ignored:maxlength(0)?}"))
    assert template.match("") == {}
    assert template.match("favicon.ico") is None


def test_optional_trailing_parameter() -> None:
    template = RouteTemplate.parse("api/items/{id:int}/{page?}")
    assert template.match("api/items/7") == {"id": "7"}
    assert template.match("api/items/7/3") == {"id": "7", "page": "3"}
    assert template.match("api/items/seven") is None


@pytest.mark.parametrize(
    ("constraint", "good", "bad"),
    [
        ("int", "-12", "1.5"),
        ("long", "9000000000", "x"),
        ("bool", "True", "yes"),
        ("alpha", "abc", "ab1"),
        ("guid", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "not-a-guid"),
        ("minlength(3)", "abc", "ab"),
        ("maxlength(3)", "abc", "abcd"),
        ("length(2,3)", "ab", "a"),
        ("min(10)", "10", "9"),
        ("max(10)", "10", "11"),
        ("range(1,5)", "5", "6"),
        ("regex(^s-\\d+$)", "s-42", "s-x"),
        ("double", "2.5", "two"),
    ],
)
def test_constraints(constraint: str, good: str, bad: str) -> None:
    template = RouteTemplate.parse(f"things/{{value:{constraint}}}")
    assert template.match(f"things/{good}") == {"value": good}
    assert template.match(f"things/{bad}") is None


def test_catch_all_takes_the_rest_of_the_path() -> None:
    template = RouteTemplate.parse("files/{*rest}")
    assert template.match("files/a/b/c.txt") == {"rest": "a/b/c.txt"}
    assert template.match("files") == {}


def test_more_specific_templates_sort_first() -> None:
    templates = [RouteTemplate.parse(t) for t in ("api/{name}", "api/{id:int}", "api/health", "{*all}")]
    ordered = [t.template for t in sorted(templates, key=lambda t: t.sort_key)]
    assert ordered == ["api/health", "api/{id:int}", "api/{name}", "{*all}"]


@pytest.mark.parametrize(
    "template",
    ["api/{id", "api/{1bad}", "api/{x}/{x}", "{*rest}/more", "api/{a?}/b", "api/{v:nosuch}", "api//x", "a/{x}{y}"],
)
def test_malformed_templates_are_refused(template: str) -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate.parse(template)


def test_join_route_applies_the_host_prefix() -> None:
    assert join_route("api", "hello") == "api/hello"
    assert join_route("", "/hello/") == "hello"
    assert join_route("/api/", "") == "api"
