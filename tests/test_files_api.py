"""The Files API through tapedeck: multipart uploads and binary downloads, recorded and
replayed; and endpoints tapedeck has no code for (text, bytes, a stream, GET and DELETE).

The round trip — upload, list, metadata, download, a message citing the file — is recorded
with the official SDK through :mod:`files_upstream` in mode ``once``, then replayed in
``none`` with the stand-in gone: the same ids, the same bytes. The uploaded and downloaded
bytes are kept beside the cassette (``<name>.files/<sha256>``), the YAML holds their hashes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from conftest import LogLines, MakeServer, api_error, running, sdk
from files_upstream import BETA, BINARY, FilesUpstream
from tapedeck.cassette.load import load_cassette, parse_cassette
from tapedeck.cassette.model import Blob
from tapedeck.cassette.save import sweep_temporary
from tapedeck.cassette.summary import kind
from tapedeck.config import Mode, Settings
from tapedeck.config.settings import from_keywords, resolve
from tapedeck.errors import CassetteError, ConfigError
from tapedeck.observe.entries import JournalEntry, PlatformCall
from tapedeck.server.app import load_library
from tapedeck.server.runner import ServerThread
from tapedeck.tools.lint import lint_text
from tapedeck.wire import multipart

#: A small PDF-ish document: not UTF-8.
DOCUMENT = b"%PDF-1.4\n\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n\x00\x01\x02 tail\n"
CASSETTE = "files/round-trip"
HEADERS = {"x-tapedeck-cassette": CASSETTE}


def round_trip(client: anthropic.Anthropic, data: bytes) -> dict[str, Any]:
    """Upload ``data``, list, read its metadata, download it, cite it in a message."""
    uploaded = client.beta.files.upload(
        file=("report.pdf", io.BytesIO(data), "application/pdf"), betas=[BETA]
    )
    listed = client.beta.files.list(betas=[BETA])
    metadata = client.beta.files.retrieve_metadata(uploaded.id, betas=[BETA])
    downloaded = client.beta.files.download(uploaded.id, betas=[BETA])
    message = client.beta.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        betas=[BETA],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What does it say?"},
                    {"type": "document", "source": {"type": "file", "file_id": uploaded.id}},
                ],
            }
        ],
    )
    return {
        "id": uploaded.id,
        "uploaded": uploaded.model_dump(),
        "listed": [f.id for f in listed.data],
        "metadata": metadata.model_dump(),
        "content": downloaded.read(),
        "content_type": downloaded.headers["content-type"],
        "message": message.content[0].text,  # type: ignore[union-attr]
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The round trip recorded in mode once through the stand-in (which is then gone)."""
    root = tmp_path_factory.mktemp("files")
    with FilesUpstream() as upstream:
        settings = {"mode": Mode.ONCE, "upstream": upstream.base_url}
        with running(root, **settings) as server, sdk(server, default_headers=HEADERS) as c:
            seen = round_trip(c, DOCUMENT)
        uploads = [s for s in upstream.seen if s.method == "POST" and s.path == "/v1/files"]
        assert len(uploads) == 1
        assert uploads[0].headers["content-type"].startswith("multipart/form-data; boundary=")
        assert upstream.files[seen["id"]].data == DOCUMENT  # forwarded byte for byte
    return root, seen


def test_the_round_trip_records_through_the_sdk(recorded: tuple[Path, dict[str, Any]]) -> None:
    _, seen = recorded
    assert seen["id"] == "file_up_0001"
    assert seen["listed"] == ["file_up_0001"]
    assert seen["metadata"]["size_bytes"] == len(DOCUMENT)
    assert seen["content"] == DOCUMENT
    assert seen["content_type"] == "application/pdf"
    assert seen["message"] == f"file_up_0001 holds {len(DOCUMENT)} bytes"


def test_the_cassette_keeps_hashes_and_the_bytes_beside_it(
    recorded: tuple[Path, dict[str, Any]],
) -> None:
    root, _ = recorded
    digest = hashlib.sha256(DOCUMENT).hexdigest()
    document = yaml.safe_load((root / f"{CASSETTE}.yaml").read_text())
    upload = document["interactions"][0]
    assert upload["request"]["path"] == "/v1/files"
    assert upload["request"]["body"] == {
        "multipart": [
            {
                "name": "file",
                "filename": "report.pdf",
                "content_type": "application/pdf",
                "sha256": digest,
                "size": len(DOCUMENT),
            }
        ]
    }
    download = document["interactions"][3]
    assert download["request"]["path"] == "/v1/files/file_up_0001/content"
    assert download["response"]["binary"] == {"sha256": digest, "size": len(DOCUMENT)}
    assert download["response"]["headers"]["content-type"] == "application/pdf"
    # Uploaded and downloaded bytes are the same content: one file, named by its hash.
    kept = sorted(p.name for p in (root / f"{CASSETTE}.files").iterdir())
    assert kept == [digest]
    assert (root / f"{CASSETTE}.files" / digest).read_bytes() == DOCUMENT
    assert b"%PDF" not in (root / f"{CASSETTE}.yaml").read_bytes()


def test_the_round_trip_replays_with_the_upstream_gone(
    recorded: tuple[Path, dict[str, Any]], make_server: MakeServer
) -> None:
    root, seen = recorded
    with make_server(root) as server, sdk(server, default_headers=HEADERS) as c:
        again = round_trip(c, DOCUMENT)
        assert again == seen  # the recorded ids, the same bytes and content type
        # Other bytes under the same name are another request: a miss.
        with pytest.raises(anthropic.NotFoundError, match="no cassette matches POST /v1/files"):
            c.beta.files.upload(
                file=("report.pdf", io.BytesIO(DOCUMENT + b"!"), "application/pdf"), betas=[BETA]
            )


def test_the_round_trip_replays_through_foundry_and_its_log_names_the_platform(
    recorded: tuple[Path, dict[str, Any]],
    make_server: MakeServer,
    tapedeck_log: LogLines,
) -> None:
    """Multipart and binary bodies under a platform's prefix (``/anthropic/v1/files``) are
    the first-party ones: the first-party recording answers the Foundry client."""
    root, seen = recorded
    with make_server(root) as server:
        tapedeck_log.only(server)
        foundry = anthropic.AnthropicFoundry(
            base_url=server.base_url + "/anthropic/",
            api_key="foundry-test-key",
            default_headers=HEADERS,
            max_retries=0,
        )
        with foundry:
            again = round_trip(foundry, DOCUMENT)  # type: ignore[arg-type]
        assert again == seen
        upload = httpx.get(f"{server.base_url}/_tapedeck/journal").json()["entries"][0]
    assert upload["path"] == "/v1/files"
    assert upload["platform"] == {"name": "anthropic-prefix", "path": "/anthropic/v1/files"}
    assert JournalEntry.from_json(upload).platform == PlatformCall(
        "anthropic-prefix", "/anthropic/v1/files"
    )
    tapedeck_log.wait_for(r"POST /anthropic/v1/files \(anthropic-prefix: /v1/files\) 200")


def test_a_missing_or_changed_file_beside_the_cassette_is_a_500_naming_it(
    recorded: tuple[Path, dict[str, Any]], make_server: MakeServer, tmp_path: Path
) -> None:
    root, seen = recorded
    copy = tmp_path / "files"
    copy.mkdir()
    (copy / "round-trip.yaml").write_bytes((root / f"{CASSETTE}.yaml").read_bytes())
    folder = copy / "round-trip.files"
    folder.mkdir()
    digest = hashlib.sha256(DOCUMENT).hexdigest()
    with make_server(tmp_path) as server, httpx.Client(base_url=server.base_url) as h:
        url = f"/v1/files/{seen['id']}/content"
        headers = {**HEADERS, "anthropic-beta": BETA}
        message = api_error(h.get(url, headers=headers), 500, "api_error")
        assert f"round-trip.files/{digest}" in message
        (folder / digest).write_bytes(DOCUMENT + b"changed")
        message = api_error(h.get(url, headers=headers), 500, "api_error")
        assert "does not hold the bytes" in message


# --- endpoints tapedeck has no code for ------------------------------------------------------


def test_text_bytes_and_streams_of_any_endpoint_record_and_replay(
    make_server: MakeServer, tmp_path: Path
) -> None:
    paths = ["/v1/echo/text", "/v1/echo/binary", "/v1/echo/stream"]
    with FilesUpstream() as upstream:
        settings = {"mode": Mode.ONCE, "upstream": upstream.base_url}
        with make_server(tmp_path, **settings) as s, httpx.Client(base_url=s.base_url) as h:
            first = {p: h.get(p, headers={"x-tapedeck-cassette": "echo"}) for p in paths}
    assert first["/v1/echo/binary"].content == BINARY
    document = yaml.safe_load((tmp_path / "echo.yaml").read_text())
    kept = [i["response"] for i in document["interactions"]]
    assert kept[0]["text"] == "plain text\r\nwith a line ending\n"
    assert kept[1]["binary"]["sha256"] == hashlib.sha256(BINARY).hexdigest()
    assert [e["data"] for e in kept[2]["events"]] == [{"n": 1}, {"n": 2}]
    with make_server(tmp_path) as s, httpx.Client(base_url=s.base_url) as h:
        for path in paths:
            again = h.get(path, headers={"x-tapedeck-cassette": "echo"})
            assert again.status_code == 200
            assert again.content == first[path].content, path
            kind = again.headers["content-type"]
            assert kind == first[path].headers["content-type"], path


def test_delete_records_and_replays(make_server: MakeServer, tmp_path: Path) -> None:
    named = {"x-tapedeck-cassette": "deleted"}
    with FilesUpstream() as upstream:
        settings = {"mode": Mode.ONCE, "upstream": upstream.base_url}
        with make_server(tmp_path, **settings) as s, sdk(s, default_headers=named) as c:
            up = c.beta.files.upload(file=("a.txt", b"hello", "text/plain"), betas=[BETA])
            gone = c.beta.files.delete(up.id, betas=[BETA])
    with make_server(tmp_path) as s, sdk(s, default_headers=named) as c:
        assert c.beta.files.upload(file=("a.txt", b"hello", "text/plain"), betas=[BETA]) == up
        assert c.beta.files.delete(up.id, betas=[BETA]) == gone


def test_a_key_in_uploaded_or_downloaded_bytes_never_reaches_disk(
    make_server: MakeServer, tmp_path: Path
) -> None:
    secret = b"\x00\xff key=sk-ant-api03-FILELEAK-abc987_Zz; \xfe end"
    named = {"x-tapedeck-cassette": "secret"}
    with FilesUpstream() as upstream:
        settings = {"mode": Mode.ONCE, "upstream": upstream.base_url}
        with make_server(tmp_path, **settings) as s, sdk(s, default_headers=named) as c:
            up = c.beta.files.upload(
                file=("k.bin", secret, "application/octet-stream"), betas=[BETA]
            )
            assert c.beta.files.download(up.id, betas=[BETA]).read() == secret
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"FILELEAK" not in path.read_bytes(), path
    kept = b"\x00\xff key=sk-ant-REDACTED; \xfe end"
    assert (tmp_path / "secret.files" / hashlib.sha256(kept).hexdigest()).read_bytes() == kept
    with make_server(tmp_path) as s, sdk(s, default_headers=named) as c:  # still matches
        assert (
            c.beta.files.upload(file=("k.bin", secret, "application/octet-stream"), betas=[BETA])
            == up
        )
        assert c.beta.files.download(up.id, betas=[BETA]).read() == kept


# --- what is refused -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A replaying server whose max_file_size is 1 KiB."""
    with running(tmp_path_factory.mktemp("small"), max_file_size=1024) as server:
        yield server


def test_an_upload_over_max_file_size_gets_413(small: ServerThread) -> None:
    with sdk(small) as c, pytest.raises(anthropic.APIStatusError) as caught:
        c.beta.files.upload(file=("big.bin", b"x" * 1025, "application/octet-stream"))
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    assert "setting max_file_size" in caught.value.message


def test_multipart_to_messages_gets_400(small: ServerThread) -> None:
    files = {"file": ("a.txt", b"hello", "text/plain")}
    response = httpx.post(f"{small.base_url}/v1/messages", files=files)
    assert "must be JSON" in api_error(response, 400, "invalid_request_error")


def test_a_form_of_another_kind_is_refused_on_the_upload_endpoint(small: ServerThread) -> None:
    response = httpx.post(f"{small.base_url}/v1/files", data={"file": "not a file part"})
    assert "must be JSON" in api_error(response, 400, "invalid_request_error")


def test_a_broken_multipart_body_gets_400(small: ServerThread) -> None:
    headers = {"content-type": "multipart/form-data; boundary=XYZ"}
    response = httpx.post(f"{small.base_url}/v1/files", content=b"--XYZ\r\nnope", headers=headers)
    assert "multipart/form-data body" in api_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize(
    "headers",
    [{"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}],
    ids=["origin", "sec-fetch-site"],
)
def test_a_multipart_upload_from_a_web_page_is_refused(
    small: ServerThread, headers: dict[str, str]
) -> None:
    files = {"file": ("a.txt", b"hello", "text/plain")}
    response = httpx.post(f"{small.base_url}/v1/files", files=files, headers=headers)
    assert "web page" in api_error(response, 403, "permission_error")


def test_an_upload_endpoint_newer_than_tapedeck_is_one_setting_away(
    make_server: MakeServer, tmp_path: Path
) -> None:
    """An upload path tapedeck does not know is refused as multipart, until it is named in
    ``upload_paths``: then it records and replays like the files endpoint."""
    files = {"file": ("a.bin", BINARY, "application/octet-stream")}
    path, cassette = "/v1/echo/w1/uploads", {"x-tapedeck-cassette": "new-upload"}
    with FilesUpstream() as upstream:
        settings: dict[str, Any] = {"mode": Mode.ONCE, "upstream": upstream.base_url}
        with make_server(tmp_path, **settings) as s:
            refused = httpx.post(s.base_url + path, files=files, headers=cassette)
        assert "must be JSON" in api_error(refused, 400, "invalid_request_error")
        settings["upload_paths"] = ("/v1/echo/*/uploads",)
        with make_server(tmp_path, **settings) as s:
            first = httpx.post(s.base_url + path, files=files, headers=cassette)
        assert first.status_code == 200, first.text
        assert first.json() == {"sizes": [len(BINARY)]}
    with make_server(tmp_path, upload_paths=("/v1/echo/*/uploads",)) as s:
        again = httpx.post(s.base_url + path, files=files, headers=cassette)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert list((tmp_path / "new-upload.files").iterdir())  # the bytes, beside the cassette


@pytest.mark.parametrize(
    ("paths", "problem"),
    [("v1/x", "expected API paths"), ("/v1/a*/b", "one whole path segment"), ("/v1//x", "")],
)
def test_a_bad_upload_path_is_refused_with_what_is_expected(paths: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"upload_paths.*{problem}"):
        resolve(from_keywords({"upload_paths": paths}))


# --- the cassette format ------------------------------------------------------------------

BINARY_CASSETTE = """\
version: 1
interactions:
- request: {method: GET, path: /v1/files/f/content}
  response:
    status: 200
    binary: {sha256: %s, size: 3}
"""


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("NOTHEX", "interactions[0].response.binary.sha256: expected 64 lower-case hex digits"),
        ("a" * 64 + ", extra: 1", "interactions[0].response.binary: unknown field 'extra'"),
    ],
    ids=["sha256", "unknown-field"],
)
def test_a_bad_binary_field_names_file_line_and_field(value: str, problem: str) -> None:
    with pytest.raises(CassetteError) as caught:
        parse_cassette(BINARY_CASSETTE % value, "c.yaml", "c")
    assert str(caught.value).startswith(f"c.yaml:6: {problem}"), str(caught.value)


def test_binary_and_body_together_are_refused() -> None:
    text = BINARY_CASSETTE % ("a" * 64) + "    body: {}\n"
    with pytest.raises(CassetteError, match="one of 'body', 'text', 'binary' or 'events'"):
        parse_cassette(text, "c.yaml", "c")


def test_a_form_with_fields_and_several_files_records_and_replays(
    make_server: MakeServer, tmp_path: Path
) -> None:
    named = {"x-tapedeck-cassette": "skills"}
    files = [
        ("my-skill/SKILL.md", b"---\nname: my-skill\n---\nDo it.\n", "text/markdown"),
        ("my-skill/run.bin", BINARY, "application/octet-stream"),
    ]
    with FilesUpstream() as upstream:
        settings = {"mode": Mode.ONCE, "upstream": upstream.base_url}
        with make_server(tmp_path, **settings) as s, sdk(s, default_headers=named) as c:
            made = c.beta.skills.create(display_name="Mine", files=files)
    assert made.to_dict()["files"] == [[name, len(data)] for name, data, _ in files]
    body = yaml.safe_load((tmp_path / "skills.yaml").read_text())["interactions"][0]["request"]
    parts = body["body"]["multipart"]
    assert parts[0] == {"name": "display_name", "value": "Mine"}
    assert [p["filename"] for p in parts[1:]] == ["my-skill/SKILL.md", "my-skill/run.bin"]
    assert [p["sha256"] for p in parts[1:]] == [hashlib.sha256(f[1]).hexdigest() for f in files]
    kept = {p.name for p in (tmp_path / "skills.files").iterdir()}
    assert kept == {hashlib.sha256(f[1]).hexdigest() for f in files}
    with make_server(tmp_path) as s, sdk(s, default_headers=named) as c:
        assert c.beta.skills.create(display_name="Mine", files=files) == made
        with pytest.raises(anthropic.NotFoundError, match="no cassette matches"):
            c.beta.skills.create(display_name="Yours", files=files)


def test_a_file_a_killed_recording_left_beside_a_cassette_is_swept(tmp_path: Path) -> None:
    folder = tmp_path / "files" / "a.files"
    folder.mkdir(parents=True)
    dead = folder / f".{'b' * 64}.999999999.0a1b2c.tmp"  # no such process
    dead.write_bytes(b"half")
    kept = folder / ("c" * 64)
    kept.write_bytes(b"whole")
    assert sweep_temporary(tmp_path) == [dead]
    assert kept.exists()


def test_a_binary_response_is_described_as_binary(recorded: tuple[Path, dict[str, Any]]) -> None:
    root, _ = recorded
    cassette = load_cassette(root / f"{CASSETTE}.yaml", CASSETTE)
    assert [kind(i.response) for i in cassette.interactions] == [
        "json",
        "json",
        "json",
        "binary",
        "json",
    ]
    assert cassette.interactions[0].request.uploads[0].size == len(DOCUMENT)


def test_lint_names_a_binary_body_missing_beside_its_cassette(
    recorded: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root, _ = recorded
    copy = tmp_path / "round-trip.yaml"
    copy.write_bytes((root / f"{CASSETTE}.yaml").read_bytes())
    digest = hashlib.sha256(DOCUMENT).hexdigest()
    problems = lint_text(copy.read_text(), str(copy))
    assert [p.message for p in problems] == [
        f"interactions[3].response.binary: round-trip.files/{digest} is missing; copy the "
        "cassette with its folder, or record it again"
    ]
    (tmp_path / "round-trip.files").mkdir()
    (tmp_path / "round-trip.files" / digest).write_bytes(DOCUMENT)
    assert lint_text(copy.read_text(), str(copy)) == []


# --- the multipart parser -------------------------------------------------------------------


def test_multipart_parts_keep_their_bytes_whatever_they_hold() -> None:
    tricky = b"line\r\n--XYZnot the end\r\n--XY\r\n\r\n\x00"
    body = (
        b"preamble\r\n--XYZ\r\n"
        b'content-disposition: form-data; name="file"; filename="a \\"b\\".bin"\r\n'
        b"content-type: application/octet-stream\r\n\r\n" + tricky + b"\r\n--XYZ\r\n"
        b"Content-Disposition: form-data; name=note\r\n\r\n"
        b"hi\r\n--XYZ--\r\nepilogue"
    )
    parts = multipart.parse(body, 'multipart/form-data; boundary="XYZ"')
    assert parts == [
        multipart.Part("file", 'a "b".bin', "application/octet-stream", tricky),
        multipart.Part("note", None, None, b"hi"),
    ]


@pytest.mark.parametrize(
    ("body", "kind", "problem"),
    [
        (b"--B\r\n\r\nx\r\n--B--", "multipart/form-data", "without a boundary"),
        (b"--B\r\ncontent-disposition: form-data; name=a\r\n\r\nx", "b=B", "before its closing"),
        (b"--B\r\ncontent-type: text/plain\r\n\r\nx\r\n--B--", "b=B", "no content-disposition"),
        (b"--B\r\ncontent-disposition: form-data\r\n\r\nx\r\n--B--", "b=B", "has no name"),
        (b"nothing", "b=B", "does not start with the boundary"),
    ],
)
def test_a_broken_multipart_body_says_what_is_wrong(body: bytes, kind: str, problem: str) -> None:
    content_type = kind.replace("b=B", "multipart/form-data; boundary=B")
    with pytest.raises(ValueError, match=problem):
        multipart.parse(body, content_type)


def test_the_library_index_keeps_binary_bodies_and_uploads(
    recorded: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root, _ = recorded
    cache = tmp_path / "cache"
    fresh = load_library(Settings(cassettes=root, index_cache=cache))
    assert list(cache.iterdir())  # written, and read by the next start
    cached = load_library(Settings(cassettes=root, index_cache=cache))
    for library in (fresh, cached):
        interactions = library.cassettes[CASSETTE].interactions
        assert interactions[3].response.binary == Blob(
            hashlib.sha256(DOCUMENT).hexdigest(), len(DOCUMENT)
        )
        assert [b.size for b in interactions[0].request.uploads] == [len(DOCUMENT)]
