"""SSH rotated secrets: the Linux user's password is changed with chpasswd over SSH (the new
one logs in, the old one no longer does); a failed verification restores the old password; the
target pins the host key and refuses a mismatch."""
import secrets
import subprocess

import pytest

from rotlib import create_linux_user, delete_linux_user, free_port, ssh_login_ok


@pytest.fixture
def linux_user():
    pw = "Init-" + secrets.token_hex(8)
    name = create_linux_user(pw)
    yield name, pw
    delete_linux_user(name)


def current(node, name):
    r = node.call("get-rotated-secret-value", names=name)
    assert r.status_code == 200, r.text
    return r.json()


def test_ssh_rotation_changes_the_linux_password(node, sshd, ssh_target, linux_user):
    user, pw = linux_user
    assert ssh_login_ok(sshd, user, pw)
    r = node.call("rotated-secret-create-ssh", name="/rot/ssh/user", target_name=ssh_target, rotated_username=user,
                  rotated_password=pw)
    assert r.status_code == 200, r.text
    r = node.call("gateway-rotate-secret", name="/rot/ssh/user")
    assert r.status_code == 200, r.text
    new = current(node, "/rot/ssh/user")["value"]["password"]
    assert new != pw
    assert ssh_login_ok(sshd, user, new)
    assert not ssh_login_ok(sshd, user, pw)


def test_custom_command(node, sshd, ssh_target, linux_user):
    user, pw = linux_user
    r = node.call("rotated-secret-create-ssh", name="/rot/ssh/custom", target_name=ssh_target, rotated_username=user,
                  rotated_password=pw, rotator_custom_cmd="/usr/sbin/chpasswd")
    assert r.status_code == 200, r.text
    assert node.call("gateway-rotate-secret", name="/rot/ssh/custom").status_code == 200
    assert ssh_login_ok(sshd, user, current(node, "/rot/ssh/custom")["value"]["password"])


def test_failed_verification_restores_the_old_password(node, sshd, ssh_target, linux_user):
    user, pw = linux_user
    r = node.call("rotated-secret-create-ssh", name="/rot/ssh/badverify", target_name=ssh_target, rotated_username=user,
                  rotated_password=pw, skip_dry_run=True, verify_port=free_port())
    assert r.status_code == 200, r.text
    r = node.call("gateway-rotate-secret", name="/rot/ssh/badverify")
    assert r.status_code == 502, r.text
    got = current(node, "/rot/ssh/badverify")
    assert got["version"] == 1 and got["value"]["password"] == pw
    assert ssh_login_ok(sshd, user, pw)
    assert node.call("describe-item", name="/rot/ssh/badverify").json()["rotator_status"] == "RotationFailed"


def test_host_key_is_pinned_and_a_mismatch_is_refused(node, sshd, tmp_path):
    got = node.call("target-get", name="rot-ssh").json() if node.call("target-get", name="rot-ssh").status_code == 200 else None
    if got:
        assert got["host_key"].split()[:2] == sshd["host_key"].split()[:2]
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = (tmp_path / "other.pub").read_text().strip()
    r = node.call("target-create-ssh", name="rot-ssh-wrongkey", host="127.0.0.1", port=sshd["port"], ssh_username="root",
                  private_key=sshd["admin_key"], host_key=other)
    assert r.status_code == 400 and "does not match" in r.text, r.text
    assert node.call("target-get", name="rot-ssh-wrongkey").status_code == 404
    r = node.call("target-create-ssh", name="rot-ssh-rightkey", host="127.0.0.1", port=sshd["port"], ssh_username="root",
                  private_key=sshd["admin_key"], host_key=sshd["host_key"])
    assert r.status_code == 200, r.text


def test_bad_ssh_targets(node, sshd):
    cases = [
        ({"host": "127.0.0.1", "port": sshd["port"], "ssh_username": "root", "ssh_password": "wrong-password"}, "authentication failed"),
        ({"host": "127.0.0.1", "port": free_port(), "ssh_username": "root", "ssh_password": "x"}, "cannot reach"),
        ({"host": "127.0.0.1", "port": sshd["port"], "ssh_username": "root", "private_key": "not a key"}, "private-key"),
        ({"host": "127.0.0.1", "port": sshd["port"], "ssh_username": "root"}, "exactly one"),
    ]
    for fields, message in cases:
        r = node.call("target-create-ssh", name="rot-ssh-bad", **fields)
        assert r.status_code == 400 and message in r.text, r.text
        assert "wrong-password" not in r.text
    assert node.call("target-get", name="rot-ssh-bad").status_code == 404
