"""Resumes: CRUD, the guide's list shape, ``completed``, validation, cross-user isolation."""
import asyncio
import re

import pytest

from foundation_support import LIGHT_ENGINE, FoundationPlugin
from test_foundation_accounts import assert_error

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
async def server(app_server_factory):
    return await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()])


async def test_crud_round_trip(server, api_client, sample_resume):
    client = await api_client(server)
    r = await client.post("/users/resume/", json=sample_resume)
    assert r.status_code == 201
    body = r.json()
    assert body["success"] is True and isinstance(body["resume_id"], int) and not isinstance(body["resume_id"], bool)
    rid = body["resume_id"]

    r = await client.get(f"/users/resume/{rid}/")
    assert r.status_code == 200
    resume = r.json()["resume"]
    for key, value in sample_resume.items():
        assert resume[key] == value
    assert resume["resume_id"] == rid and resume["completed"] is True
    assert ISO_Z.match(resume["created_at"]) and ISO_Z.match(resume["updated_at"])

    r = await client.put(f"/users/resume/{rid}/", json={"skills": ["Go", "Kubernetes"], "resume_name": "云原生简历"})
    assert r.status_code == 200
    updated = r.json()["resume"]
    assert updated["skills"] == ["Go", "Kubernetes"] and updated["resume_name"] == "云原生简历"
    assert updated["name"] == sample_resume["name"]           # untouched fields stay
    r = await client.get(f"/users/resume/{rid}/")
    assert r.json()["resume"]["skills"] == ["Go", "Kubernetes"]

    r = await client.delete(f"/users/resume/{rid}/")
    assert r.status_code == 200 and r.json()["success"] is True
    assert_error(await client.get(f"/users/resume/{rid}/"), 404)
    assert_error(await client.delete(f"/users/resume/{rid}/"), 404)
    assert (await client.get("/users/resume/list/")).json() == {"success": True, "resumes": [], "total": 0}


async def test_list_has_exactly_the_guides_shape_newest_first(server, api_client, sample_resume):
    client = await api_client(server)
    first = await client.create_resume(resume_name="后端开发简历", expected_position="后端工程师")
    await asyncio.sleep(1.1)       # updated_at has one-second resolution in the guide's format
    second = await client.create_resume(resume_name="全栈开发简历", expected_position="全栈工程师",
                                        work_experience=[], projects=[])
    r = await client.get("/users/resume/list/")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["success", "resumes", "total"]
    assert body["success"] is True and body["total"] == 2
    assert [x["resume_id"] for x in body["resumes"]] == [second, first]
    for item in body["resumes"]:
        assert list(item) == ["resume_id", "resume_name", "expected_position", "updated_at", "completed"]
        assert isinstance(item["resume_id"], int)
        assert ISO_Z.match(item["updated_at"])
    assert body["resumes"][0] == {"resume_id": second, "resume_name": "全栈开发简历", "expected_position": "全栈工程师",
                                  "updated_at": body["resumes"][0]["updated_at"], "completed": False}
    assert body["resumes"][1]["completed"] is True
    # updating the older one moves it to the top
    await asyncio.sleep(1.1)
    await client.put(f"/users/resume/{first}/", json={"self_evaluation": "更新了"})
    body = (await client.get("/users/resume/list/")).json()
    assert [x["resume_id"] for x in body["resumes"]] == [first, second]


async def test_completed_is_derived(server, api_client):
    client = await api_client(server)
    rid = await client.create_resume(name="", education=[], skills=[], work_experience=[], projects=[])
    states = []

    async def completed():
        return (await client.get(f"/users/resume/{rid}/")).json()["resume"]["completed"]

    states.append(await completed())
    for change in ({"name": "王五"}, {"education": [{"school": "北京大学"}]}, {"skills": ["SQL"]},
                   {"projects": ["个人博客系统"]}):
        assert (await client.put(f"/users/resume/{rid}/", json=change)).status_code == 200
        states.append(await completed())
    assert states == [False, False, False, False, True]
    await client.put(f"/users/resume/{rid}/", json={"projects": [], "work_experience": [{"company": "甲公司"}]})
    assert await completed() is True
    await client.put(f"/users/resume/{rid}/", json={"name": "   "})
    assert await completed() is False


async def test_resume_validation_names_the_field(server, api_client, sample_resume):
    client = await api_client(server)
    cases = [
        ({k: v for k, v in sample_resume.items() if k != "resume_name"}, "resume_name"),
        ({**sample_resume, "resume_name": ""}, "resume_name"),
        ({**sample_resume, "resume_name": 5}, "resume_name"),
        ({**sample_resume, "skills": "Python"}, "skills"),
        ({**sample_resume, "skills": ["Python", 3]}, "skills[1]"),
        ({**sample_resume, "education": {"school": "x"}}, "education"),
        ({**sample_resume, "projects": [1]}, "projects[0]"),
        ({**sample_resume, "name": ["张三"]}, "name"),
        ({**sample_resume, "self_evaluation": "好" * 6000}, "self_evaluation"),
        ({**sample_resume, "salary": 100}, "salary"),
    ]
    for body, field in cases:
        assert_error(await client.post("/users/resume/", json=body), 400, field)
    assert assert_error(await client.post("/users/resume/", content=b"{oops"), 400)["msg"] == "请求体不是合法的 JSON"
    rid = await client.create_resume()
    assert_error(await client.put(f"/users/resume/{rid}/", json={"skills": [None]}), 400, "skills[0]")
    assert_error(await client.put(f"/users/resume/{rid}/", json={}), 400)
    assert_error(await client.put(f"/users/resume/{rid}/", content=b"nope"), 400)
    # read-only fields echoed back from a GET are accepted and ignored
    resume = (await client.get(f"/users/resume/{rid}/")).json()["resume"]
    r = await client.put(f"/users/resume/{rid}/", json={**resume, "resume_name": "改名"})
    assert r.status_code == 200 and r.json()["resume"]["resume_name"] == "改名"
    assert r.json()["resume"]["resume_id"] == rid
    for bad in ("abc", "0", "-1", "99999999999999999999999"):
        assert_error(await client.get(f"/users/resume/{bad}/"), 404)


async def test_users_see_only_their_own_resumes(server, api_client):
    alice = await api_client(server)
    bob = await api_client(server)
    rid = await alice.create_resume(resume_name="Alice 的简历")
    bob_rid = await bob.create_resume(resume_name="Bob 的简历")
    assert_error(await bob.get(f"/users/resume/{rid}/"), 404, "resume_id")
    assert_error(await bob.put(f"/users/resume/{rid}/", json={"name": "Bob"}), 404, "resume_id")
    assert_error(await bob.delete(f"/users/resume/{rid}/"), 404, "resume_id")
    alice_list = (await alice.get("/users/resume/list/")).json()
    bob_list = (await bob.get("/users/resume/list/")).json()
    assert [x["resume_id"] for x in alice_list["resumes"]] == [rid]
    assert [x["resume_id"] for x in bob_list["resumes"]] == [bob_rid]
    # Alice's resume is untouched by Bob's attempts
    resume = (await alice.get(f"/users/resume/{rid}/")).json()["resume"]
    assert resume["resume_name"] == "Alice 的简历" and resume["name"] == "张三"
    # the engine's view is isolated the same way
    store = server.store
    assert await store.load_resume(bob.user_id, rid) is None
    assert (await store.load_resume(alice.user_id, rid))["resume_id"] == rid
    assert await store.load_resume(alice.user_id, "not-a-number") is None
