"""Database targets against a real PostgreSQL started for the session: the login is verified on
create, errors say why, and the password never comes back."""
import socket


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_create_verifies_login_and_hides_password(server, postgres, call):
    r = call(server, "target-create-db", name="pg1", db_type="postgres", host="127.0.0.1", port=postgres["port"],
             db_name="postgres", user_name="postgres", pwd=postgres["password"])
    assert r.status_code == 200, r.text
    got = call(server, "target-get", name="pg1")
    assert got.status_code == 200 and got.json()["db_type"] == "postgres"
    listed = call(server, "target-list")
    for resp in (got, listed):
        assert postgres["password"] not in resp.text


def test_create_errors_say_why(server, postgres, call):
    bad_pw = call(server, "target-create-db", name="pg-badpw", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                  user_name="postgres", pwd="wrong-password")
    assert bad_pw.status_code == 400 and "authentication failed" in bad_pw.json()["message"]
    assert "wrong-password" not in bad_pw.text
    no_db = call(server, "target-create-db", name="pg-nodb", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                 db_name="nosuchdb", user_name="postgres", pwd=postgres["password"])
    assert no_db.status_code == 400 and "does not exist" in no_db.json()["message"]
    down = call(server, "target-create-db", name="pg-down", db_type="postgres", host="127.0.0.1", port=_free_port(),
                user_name="postgres", pwd="x")
    assert down.status_code == 400 and "cannot reach" in down.json()["message"]
    other = call(server, "target-create-db", name="pg-my", db_type="mysql", host="127.0.0.1", port=3306, user_name="u", pwd="x")
    assert other.status_code == 400 and "unsupported db-type" in other.json()["message"]
    names = [t["target_name"] for t in call(server, "target-list").json()["targets"]]
    assert not any(n.startswith("pg-") for n in names)
