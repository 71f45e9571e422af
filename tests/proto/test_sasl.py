import base64

import pytest

from pochta.proto.sasl import (
    MECHANISMS,
    Challenge,
    CheckPassword,
    Failure,
    Login,
    NeedCredentials,
    Plain,
    SaslUsageError,
    ScramCredentials,
    ScramSha256,
    Success,
    derive_scram_credentials,
    new_mechanism,
    saslprep,
)

# RFC 7677 §3: user "user", password "pencil"
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
NONCE = "rOprNGfwEbeRWgbNEkqO" + SERVER_NONCE
SERVER_FIRST = f"r={NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".encode()
CLIENT_FINAL = f"c=biws,r={NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".encode()
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
PENCIL = derive_scram_credentials("pencil", salt=base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), iterations=4096)


def scram() -> ScramSha256:
    return ScramSha256(new_nonce=lambda: SERVER_NONCE)


def scram_until_final(client_first: bytes = CLIENT_FIRST) -> ScramSha256:
    mechanism = scram()
    assert mechanism.start(client_first) == NeedCredentials(authcid="user")
    assert mechanism.credentials(PENCIL) == Challenge(data=SERVER_FIRST)
    return mechanism


# ---- PLAIN ----------------------------------------------------------------------------------


def test_plain_with_initial_response() -> None:
    assert Plain().start(b"\0tim\0tanstaaftanstaaf") == CheckPassword(authcid="tim", password="tanstaaftanstaaf")


def test_plain_without_initial_response_gets_an_empty_challenge() -> None:
    mechanism = Plain()
    assert mechanism.start(None) == Challenge(data=b"")
    assert mechanism.respond(b"tim\0tim\0pw") == CheckPassword(authcid="tim", password="pw")
    with pytest.raises(SaslUsageError):
        mechanism.respond(b"again")


@pytest.mark.parametrize(
    ("message", "is_malformed"),
    [
        (b"admin\0tim\0pw", False),  # RFC 4616 §2: another authzid is refused here
        (b"tim\0pw", True),
        (b"\0\0pw", True),
        (b"\0tim\0", True),
        (b"\0tim\0p\0w", True),
        (b"\0\xff\0pw", True),
    ],
)
def test_plain_refusals(message: bytes, is_malformed: bool) -> None:
    step = Plain().start(message)
    assert isinstance(step, Failure) and step.is_malformed == is_malformed


# ---- LOGIN ----------------------------------------------------------------------------------


def test_login_prompts() -> None:
    mechanism = Login()
    assert mechanism.start(None) == Challenge(data=b"Username:")
    assert mechanism.respond(b"tim") == Challenge(data=b"Password:")
    assert mechanism.respond(b"secret") == CheckPassword(authcid="tim", password="secret")


def test_login_with_user_name_in_initial_response() -> None:
    mechanism = Login()
    assert mechanism.start(b"tim") == Challenge(data=b"Password:")
    assert mechanism.respond(b"") == CheckPassword(authcid="tim", password="")


def test_login_refuses_empty_user_name() -> None:
    assert isinstance(Login().start(b""), Failure)


# ---- SCRAM-SHA-256 --------------------------------------------------------------------------


def test_derived_credentials_match_rfc_7677() -> None:
    assert PENCIL.iterations == 4096
    assert len(PENCIL.stored_key) == len(PENCIL.server_key) == 32


def test_rfc_7677_example_exchange() -> None:
    mechanism = scram_until_final()
    assert mechanism.respond(CLIENT_FINAL) == Success(authcid="user", data=SERVER_FINAL)
    with pytest.raises(SaslUsageError):
        mechanism.respond(b"more")


def test_scram_without_initial_response() -> None:
    mechanism = scram()
    assert mechanism.start(None) == Challenge(data=b"")
    assert mechanism.respond(CLIENT_FIRST) == NeedCredentials(authcid="user")


def test_scram_y_flag_is_fine_without_plus() -> None:
    mechanism = scram_until_final(b"y,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    step = mechanism.respond(CLIENT_FINAL.replace(b"c=biws", b"c=eSws"))  # base64("y,,")
    # the proof was computed for "n,,", so it fails; but the binding itself was accepted
    assert step == Failure(reason="invalid proof", is_malformed=False)


def test_scram_p_flag_is_refused() -> None:
    step = scram().start(b"p=tls-exporter,,n=user,r=abc")
    assert step == Failure(reason="channel binding not supported", is_malformed=False)


@pytest.mark.parametrize(
    ("final", "reason"),
    [
        (CLIENT_FINAL.replace(b"p=dHzb", b"p=dHzc"), "invalid proof"),
        (CLIENT_FINAL.replace(NONCE.encode(), b"rOprNGfwEbeRWgbNEkqOother"), "nonce does not match"),
        (CLIENT_FINAL.replace(b"c=biws", b"c=eSws"), "channel binding data does not match"),
        (CLIENT_FINAL.replace(b"c=biws", b"c=cD10bHMtZXhwb3J0ZXIsLA=="), "channel binding data does not match"),
        (CLIENT_FINAL[: CLIENT_FINAL.index(b",p=")] + b",p=not*base64", "proof is not base64"),
        (CLIENT_FINAL[: CLIENT_FINAL.index(b",p=")] + b",p=AAAA", "proof has the wrong length"),
        (b"c=biws", "bad client-final-message"),
        (b"\xff", "client-final-message is not ASCII"),
    ],
)
def test_scram_bad_client_final(final: bytes, reason: str) -> None:
    step = scram_until_final().respond(final)
    assert isinstance(step, Failure) and step.reason == reason


@pytest.mark.parametrize(
    "client_first",
    [b"n,n=user,r=abc", b"x,,n=user,r=abc", b"n,,m=ext,n=user,r=abc", b"n,,r=abc,n=user", b"n,,n=us=2Ber,r=abc",
     b"n,,n=user,r=a,b", b"n,,n=,r=abc", b"n,b=x,n=user,r=abc", b"\xff"],
)  # fmt: skip
def test_scram_bad_client_first(client_first: bytes) -> None:
    step = scram().start(client_first)
    assert isinstance(step, Failure) and step.is_malformed


def test_scram_authzid() -> None:
    assert scram().start(b"n,a=user,n=user,r=abc") == NeedCredentials(authcid="user")
    assert scram().start(b"n,a=admin,n=user,r=abc") == Failure(
        reason="acting as another user is not allowed", is_malformed=False
    )


def test_scram_saslname_escapes() -> None:
    assert scram().start(b"n,,n=a=2Cb=3Dc,r=abc") == NeedCredentials(authcid="a,b=c")


def test_scram_unknown_user_gets_a_stable_fake_salt_and_fails() -> None:
    first = scram()
    first.start(b"n,,n=ghost,r=abc")
    challenge_one = first.credentials(None)
    second = scram()
    second.start(b"n,,n=ghost,r=abc")
    assert second.credentials(None) == challenge_one
    assert isinstance(challenge_one, Challenge) and b",i=4096" in challenge_one.data
    final = b"c=biws,r=abc" + SERVER_NONCE.encode() + b",p=" + base64.b64encode(bytes(32))
    assert first.respond(final) == Failure(reason="invalid proof", is_malformed=False)


def test_scram_out_of_order_use_raises() -> None:
    mechanism = scram()
    with pytest.raises(SaslUsageError):
        mechanism.credentials(PENCIL)
    mechanism.start(CLIENT_FIRST)
    with pytest.raises(SaslUsageError):
        mechanism.respond(CLIENT_FINAL)  # credentials first
    with pytest.raises(SaslUsageError):
        mechanism.start(None)


def test_derive_refuses_too_few_iterations_and_salts_randomly() -> None:
    with pytest.raises(ValueError):
        derive_scram_credentials("pw", iterations=1000)
    assert derive_scram_credentials("pw").salt != derive_scram_credentials("pw").salt


def test_derived_credentials_verify_a_client_computed_proof() -> None:
    credentials = derive_scram_credentials("pässwörd", salt=b"0123456789abcdef", iterations=4096)
    assert credentials == ScramCredentials(
        salt=b"0123456789abcdef",
        iterations=4096,
        stored_key=credentials.stored_key,
        server_key=credentials.server_key,
    )
    assert derive_scram_credentials("pa\u00adss", salt=b"s" * 16) == derive_scram_credentials("pass", salt=b"s" * 16)


@pytest.mark.parametrize(
    ("text", "prepared"),
    [("I\u00adX", "IX"), ("user", "user"), ("USER", "USER"), ("\u00aa", "a"), ("\u2168", "IX"), ("a\u00a0b", "a b")],
)
def test_saslprep_rfc_4013_examples(text: str, prepared: str) -> None:
    assert saslprep(text) == prepared


@pytest.mark.parametrize("text", ["\u0007", "\u0627\u0031"])
def test_saslprep_refusals(text: str) -> None:
    with pytest.raises(ValueError):
        saslprep(text)


def test_new_mechanism() -> None:
    assert MECHANISMS == ("SCRAM-SHA-256", "PLAIN", "LOGIN")
    assert isinstance(new_mechanism("plain"), Plain)
    assert isinstance(new_mechanism("LOGIN"), Login)
    assert isinstance(new_mechanism("scram-sha-256"), ScramSha256)
    assert new_mechanism("CRAM-MD5") is None
