"""The fake Atlassian site itself: it must answer like Atlassian (so the library's traps show up in tests)
and its contract checking must really catch a request or response that breaks the published documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from atlassian import Confluence, ConfluenceV2, Jira, ServiceDesk

from tests.fakes.atlassian import (
    SKIP_REASON,
    Contracts,
    FakeAtlassian,
    Violation,
    adf,
    running,
    shared_contracts,
)


def auth(fake: FakeAtlassian) -> dict[str, Any]:
    return {"username": fake.user, "password": fake.token} if fake.cloud else {"token": fake.token}


@pytest.fixture
def contracts() -> Contracts:
    checker = shared_contracts()
    if checker is None:
        pytest.skip(SKIP_REASON)
    return checker


@pytest.fixture(params=["cloud", "datacenter"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeAtlassian]:
    with running(request.param == "cloud") as site:
        site.add_space("DOCS")
        root = site.add_page("DOCS", "Root", "<p>root</p>")
        for n in range(7):
            site.add_page("DOCS", f"Page {n}", f"<p>body {n}</p>", parent=root)
        yield site


def test_confluence_next_links_are_relative_to_the_base_as_atlassian_sends_them(fake: FakeAtlassian) -> None:
    conf = Confluence(fake.confluence_url, cloud=False, **auth(fake))
    first = conf.get("rest/api/content", params={"spaceKey": "DOCS", "type": "page", "limit": 3})
    links = first["_links"]
    assert links["base"] == fake.confluence_url
    assert links["next"].startswith("/rest/api/content?")  # no /wiki: it is relative to the base
    second = conf.get(links["base"] + links["next"], absolute=True)
    assert [p["title"] for p in second["results"]] == ["Page 2", "Page 3", "Page 4"]


def test_the_library_pager_loses_wiki_on_cloud_trap_1() -> None:
    """NOTES.md trap 1, reproduced: get_all_pages_from_space joins the next link to the bare host."""
    with running(cloud=True) as fake:
        fake.add_space("DOCS")
        for n in range(5):
            fake.add_page("DOCS", f"Page {n}", "<p>x</p>")
        conf = Confluence(fake.confluence_url, cloud=False, **auth(fake))
        with pytest.raises(requests.HTTPError):
            list(conf.get_all_pages_from_space("DOCS", limit=2))
        assert fake.count(r"^/rest/api/content$") == 1  # page 2 went to the host, without /wiki


def test_page_sizes_are_capped_like_confluence_does(fake: FakeAtlassian) -> None:
    conf = Confluence(fake.confluence_url, cloud=False, **auth(fake))
    data = conf.get("rest/api/content", params={"spaceKey": "DOCS", "limit": 500, "expand": "body.storage"})
    assert data["limit"] == 25 and data["size"] == 8  # asked 500, served at most 25 with bodies


def test_unknown_space_is_atlassians_404(fake: FakeAtlassian) -> None:
    conf = Confluence(fake.confluence_url, cloud=False, **auth(fake))
    response = conf.session.get(fake.confluence_url + "/rest/api/space/NOPE")
    assert response.status_code == 404
    assert response.json()["message"] == "No space with key : NOPE"
    # ...while the content list of an unknown space is an empty 200, as on a real site.
    assert conf.get("rest/api/content", params={"spaceKey": "NOPE"})["results"] == []


def test_wrong_credentials_get_401_and_cloud_wants_basic_auth(fake: FakeAtlassian) -> None:
    bad = {"username": fake.user, "password": "expired"} if fake.cloud else {"token": "expired"}
    with pytest.raises(requests.HTTPError) as err:
        Confluence(fake.confluence_url, cloud=False, **bad).get("rest/api/space/DOCS")
    assert err.value.response.status_code == 401
    other_kind = {"token": fake.token} if fake.cloud else {"username": fake.user, "password": fake.token}
    with pytest.raises(requests.HTTPError):
        Confluence(fake.confluence_url, cloud=False, **other_kind).get("rest/api/space/DOCS")


def test_cql_search_pages_with_a_cursor_on_cloud_and_start_on_data_center(fake: FakeAtlassian) -> None:
    conf = Confluence(fake.confluence_url, cloud=False, **auth(fake))
    data = conf.cql('space = "DOCS" and type = page', limit=5)
    assert data["totalSize"] == 8 and data["size"] == 5
    assert ("cursor=" in data["_links"]["next"]) == fake.cloud
    rest = conf.get(fake.confluence_url + data["_links"]["next"], absolute=True)
    assert rest["size"] == 3 and "next" not in rest["_links"]


def test_confluence_v2_pages_page_by_cursor_with_filters_repeated() -> None:
    with running(cloud=True) as fake:
        space = fake.add_space("DOCS")
        fake.add_space("OTHER")
        for n in range(5):
            fake.add_page("DOCS", f"Page {n}", f"<p>{n}</p>")
        fake.add_page("OTHER", "Elsewhere", "<p>no</p>")
        v2 = ConfluenceV2(fake.confluence_url, **auth(fake))
        pages = v2.get_pages(space_id=str(space.id), body_format="storage", limit=2)  # follows the cursor
        assert [p["title"] for p in pages] == [f"Page {n}" for n in range(5)]
        assert pages[0]["body"]["storage"]["value"] == "<p>0</p>"
        assert fake.count(r"^/wiki/api/v2/pages$") == 3
        first = v2.session.get(fake.confluence_url + "/api/v2/pages", params={"space-id": space.id, "limit": 2}).json()
        nxt = first["_links"]["next"]
        assert nxt.startswith("/wiki/api/v2/pages?") and f"space-id={space.id}" in nxt and "cursor=" in nxt


def test_jira_cloud_removed_search_answers_410_and_enhanced_search_pages_by_token() -> None:
    with running(cloud=True) as fake:
        for n in range(5):
            fake.add_issue("ABC", f"Ticket {n}")
        with pytest.raises(requests.HTTPError) as err:
            Jira(fake.url, **auth(fake)).jql("project = ABC", start=0, limit=2)  # the Data Center call
        assert err.value.response.status_code == 410
        assert "/rest/api/3/search/jql" in err.value.response.json()["errorMessages"][0]
        jira = Jira(fake.url, cloud=True, **auth(fake))
        keys, token = [], None
        while True:
            data = jira.enhanced_jql("project = ABC", fields="summary", nextPageToken=token, limit=2)
            assert "total" not in data
            keys += [i["key"] for i in data["issues"]]
            token = data.get("nextPageToken")
            if data["isLast"]:
                assert token is None
                break
        assert keys == [f"ABC-{n}" for n in range(1, 6)]


def test_jira_data_center_search_pages_by_start_at() -> None:
    with running(cloud=False) as fake:
        for n in range(5):
            fake.add_issue("ABC", f"Ticket {n}", resolution=None if n == 2 else "Fixed")
        jira = Jira(fake.url, **auth(fake))
        data = jira.jql("project = ABC AND resolution is not EMPTY", fields="summary", start=2, limit=2)
        assert data["total"] == 4 and [i["key"] for i in data["issues"]] == ["ABC-4", "ABC-5"]
        with pytest.raises(requests.HTTPError) as err:
            jira.jql("project = NOPE", limit=2)
        assert "does not exist for the field 'project'" in str(err.value)


def test_jira_v3_bodies_are_adf_and_v2_bodies_strings() -> None:
    with running(cloud=True) as fake:
        key = fake.add_issue("ABC", "Crash", "It crashes.\n\nEvery time.")
        cloud = Jira(fake.url, cloud=True, **auth(fake))
        v3 = cloud.enhanced_jql("key = " + key, fields="description")["issues"][0]["fields"]["description"]
        assert v3["type"] == "doc" and len(v3["content"]) == 2
        assert cloud.get_issue(key)["fields"]["description"] == "It crashes.\n\nEvery time."  # v2 path


RICH = ("## Fix\n\nRun `reindex` now,\nthen wait.\n\n- a\n- b\n\n1. first\n2. second\n\n"
        "```sql\nVACUUM;\n\nANALYZE;\n```\n\nThanks!")


def test_the_fakes_own_adf_is_valid_and_reads_back_as_written() -> None:
    doc = adf.document(RICH)
    assert adf.problems(doc) == []
    assert [n["type"] for n in doc["content"]] == ["heading", "paragraph", "bulletList", "orderedList", "codeBlock",
                                                   "paragraph"]
    assert doc["content"][1]["content"][1] == {"type": "text", "text": "reindex", "marks": [{"type": "code"}]}
    assert doc["content"][4]["attrs"] == {"language": "sql"}  # the blank line stays inside the fence
    assert adf.plain_text(doc) == RICH


def _doc(*blocks: Any) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(blocks)}


def _para(*inline: Any) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(inline)}


@pytest.mark.parametrize(("doc", "problem"), [
    ("just a string", "not an ADF document"),
    ({"type": "doc", "content": []}, "version must be 1"),
    (_doc(_para({"type": "text", "text": ""})), "needs non-empty text"),
    (_doc({"type": "text", "text": "loose"}), "a text node may not sit in a doc"),
    (_doc(_para(_para())), "a paragraph node may not sit in a paragraph"),
    (_doc(_para({"type": "text", "text": "x", "marks": [{"type": "code"}, {"type": "strong"}]})),
     "code mark combines with link only"),
    (_doc(_para({"type": "text", "text": "x", "marks": [{"type": "blink"}]})), "unknown mark 'blink'"),
    (_doc({"type": "bulletList", "content": []}), "needs at least one child"),
    (_doc({"type": "heading", "content": [{"type": "text", "text": "h"}]}), "attrs.level 1 to 6"),
    (_doc({"type": "codeBlock", "content": [{"type": "text", "text": "x", "marks": [{"type": "em"}]}]}),
     "takes no marks"),
], ids=["string", "version", "empty-text", "text-at-top", "nested-paragraph", "code-and-strong", "unknown-mark",
        "empty-list", "heading-level", "marked-code"])
def test_the_fake_refuses_adf_that_breaks_the_format(doc: Any, problem: str) -> None:
    assert any(problem in p for p in adf.problems(doc)), adf.problems(doc)


def test_jira_v3_refuses_comments_that_are_not_valid_adf_and_stores_valid_ones_as_text() -> None:
    with running(cloud=True) as fake:
        key = fake.add_issue("ABC", "Crash")
        v3 = Jira(fake.url, cloud=True, api_version=3, **auth(fake))
        for bad in ("plain text", _doc(_para({"type": "text", "text": ""}))):
            with pytest.raises(requests.HTTPError, match="Comment body is not valid!"):
                v3.issue_add_comment(key, bad)
        v3.issue_add_comment(key, adf.document("Fixed by `reindex`.\nThanks!"))
        assert [c.body for c in fake.issues[key].comments] == ["Fixed by `reindex`.\nThanks!"]
        v2 = Jira(fake.url, cloud=True, **auth(fake))
        with pytest.raises(requests.HTTPError, match="must be a string"):
            v2.issue_add_comment(key, adf.document("ADF on v2"))


def test_jsm_requests_and_internal_comments(fake: FakeAtlassian) -> None:
    desk = ServiceDesk(fake.url, cloud=fake.cloud, **auth(fake))
    jane = fake.add_customer("jane.doe@acme.com", "Jane Doe")
    # A customer as JSM names them: Cloud by accountId, Data Center by username.
    [found] = desk.get_customers("1", query="jane")["values"]
    assert found["emailAddress"] == "jane.doe@acme.com"
    who = found["accountId"] if fake.cloud else found["name"]
    assert who == (jane.account_id if fake.cloud else jane.username)
    created = desk.create_customer_request("1", "10", {"summary": "VPN down", "description": "since 9am"},
                                           raise_on_behalf_of=who)
    key = created["issueKey"]
    desk.create_request_comment(key, "We are on it", public=True)
    desk.create_request_comment(key, "Customer is on the legacy plan", public=False)
    everything = desk.get_request_comments(key)
    assert [c["public"] for c in everything] == [True, False]
    public_only = desk.get(f"rest/servicedeskapi/request/{key}/comment", params={"public": "true", "internal": "false"})
    assert [c["body"] for c in public_only["values"]] == ["We are on it"]
    assert fake.issues[key].reporter.email == "jane.doe@acme.com"
    jira = Jira(fake.url, cloud=fake.cloud, **auth(fake))
    comments = jira.issue_get_comments(key)["comments"]
    assert len(comments) == 2
    assert ("jsdPublic" in comments[1]) == fake.cloud  # Data Center does not say on the platform API
    new = jira.create_issue(fields={"project": {"key": "SUP"}, "summary": "Escalated", "issuetype": {"name": "Bug"}})
    jira.set_issue_status(new["key"], "Done")
    assert fake.issues[new["key"]].resolution == "Done"


def test_failure_modes_and_down(fake: FakeAtlassian) -> None:
    conf = Confluence(fake.confluence_url, cloud=False, **auth(fake))
    fake.fail(500, "/rest/api/content", times=1)
    with pytest.raises(requests.HTTPError) as err:
        conf.get("rest/api/content", params={"spaceKey": "DOCS"})
    assert err.value.response.status_code == 500
    assert conf.get("rest/api/content", params={"spaceKey": "DOCS"})["size"] == 8  # healed after one
    port = fake.port
    fake.stop()
    with pytest.raises(requests.ConnectionError):
        conf.get("rest/api/space/DOCS")
    fake.start(port)
    assert conf.get("rest/api/space/DOCS")["key"] == "DOCS"


def test_contract_checker_catches_a_response_that_breaks_the_document(contracts: Contracts) -> None:
    fake = FakeAtlassian(cloud=True, contracts=contracts).start()
    try:
        fake.add_space("DOCS")
        fake.add_page("DOCS", "Root", "<p>x</p>")
        real = fake.confluence.content_list

        def broken(**kwargs: Any) -> Any:
            status, body, headers = real(**kwargs)
            body["results"][0]["version"] = {"number": "seven"}  # wrong type, and minorEdit/when missing
            del body["size"]  # required by ContentArray
            return status, body, headers

        fake.confluence.content_list = broken  # type: ignore[method-assign]
        conf = Confluence(fake.confluence_url, cloud=False, **auth(fake))
        conf.get("rest/api/content", params={"spaceKey": "DOCS", "expand": "version"})
        conf.get("rest/api/content", params={"spaceKey": "DOCS", "limit": "many"})  # a bad request too
    finally:
        fake.stop()
    found = "\n".join(map(str, fake.unexpected_violations()))
    assert "'size' is a required property" in found
    assert "'seven' is not of type 'integer'" in found
    assert "'minorEdit' is a required property" in found
    assert "(request)" in found and "limit" in found


def test_known_library_deviations_are_recorded_but_allowed(contracts: Contracts) -> None:
    with running(cloud=False) as fake:
        key = fake.add_issue("ABC", "Ticket")
        Jira(fake.url, **auth(fake)).set_issue_status(key, "Done")  # sends {"transition": {"id": 31}}
        desk = ServiceDesk(fake.url, **auth(fake))
        sd_key = fake.add_issue("SUP", "Request", jsm=True)
        desk.get_request_comments(sd_key)  # sends public=True&internal=True
        recorded = "\n".join(map(str, fake.violations))
        assert "31 is not of type 'string'" in recorded
        assert "public='True' is not true/false" in recorded
        assert fake.unexpected_violations() == []


def test_checker_maps_data_center_and_jira_v2_paths_to_the_cloud_documents() -> None:
    assert Contracts.locate("/rest/api/content/12", cloud=False) == ("confluence-v1", "/wiki/rest/api/content/12")
    assert Contracts.locate("/wiki/rest/api/content/12", cloud=True) == ("confluence-v1", "/wiki/rest/api/content/12")
    assert Contracts.locate("/rest/api/content", cloud=True) is None  # Cloud has no Confluence outside /wiki
    assert Contracts.locate("/rest/api/2/search", cloud=False) == ("jira-v3", "/rest/api/3/search")
    assert Contracts.locate("/wiki/api/v2/pages", cloud=True) == ("confluence-v2", "/wiki/api/v2/pages")
    assert Contracts.locate("/rest/servicedeskapi/request", cloud=False)[0] == "jsm"  # type: ignore[index]


def test_specs_missing_means_a_clear_skip_reason(tmp_path: Any) -> None:
    assert not Contracts(tmp_path).available()
    assert "contracts/atlassian" in SKIP_REASON and "cannot run" in SKIP_REASON


def test_violation_text_names_operation_and_direction() -> None:
    text = str(Violation("GET /wiki/rest/api/content", "response", "x"))
    assert text == "GET /wiki/rest/api/content (response): x"
