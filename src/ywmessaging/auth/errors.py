"""Authentication and account errors, each with a stable `code`."""

from __future__ import annotations

from ..errors import (
    BadRequest,
    Conflict,
    Forbidden,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ywmessaging"'}


class NotAuthenticated(Unauthorized):
    """No credentials at all on a route that needs them."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers=dict(BEARER_CHALLENGE))


class InvalidToken(Unauthorized):
    """A bad, expired, revoked or wrong-kind access token (one code for every reason)."""

    code, title = "invalid_token", "The access token is not valid"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class InvalidCredentials(Unauthorized):
    code, title = "invalid_credentials", "Email or password is wrong"


class LoginThrottled(TooManyRequests):
    code, title = "login_throttled", "Too many failed logins: wait before trying again"


class LoginLocked(TooManyRequests):
    code, title = "login_locked", "Login is temporarily locked after too many failures"


class InvalidMfaToken(Unauthorized):
    code, title = "invalid_mfa_token", "The MFA token is not valid"


class InvalidMfaCode(BadRequest):
    code, title = "invalid_mfa_code", "The code is not valid"


class MfaLocked(TooManyRequests):
    code, title = "mfa_locked", "Too many wrong codes: MFA is temporarily locked"


class MfaAlreadyEnabled(Conflict):
    code, title = "mfa_already_enabled", "MFA is already enabled"


class MfaNotEnabled(Conflict):
    code, title = "mfa_not_enabled", "MFA is not enabled"


class MfaNotSetUp(Conflict):
    code, title = "mfa_not_set_up", "Start MFA setup first"


class InvalidRefreshToken(Unauthorized):
    code, title = "invalid_refresh_token", "The refresh token is not valid"


class RefreshTokenReused(Unauthorized):
    code, title = "refresh_token_reused", "A used refresh token was presented: session revoked"


class RefreshTokenSuperseded(Conflict):
    code, title = "refresh_token_superseded", "This refresh token was just rotated: use the new one"


class CsrfFailed(Forbidden):
    code, title = "csrf_failed", "Missing or wrong CSRF token"


class WeakPassword(ValidationFailed):
    code, title = "weak_password", "The password does not meet the policy"

    def __init__(self, detail: str, *, field: str, rule: str) -> None:
        super().__init__(detail, field=field, error_code=rule, rule=rule)


class InvalidCurrentPassword(Forbidden):
    code, title = "invalid_current_password", "The current password is wrong"


class InvalidPasswordOrCode(Forbidden):
    """Step-up with a password and a code: one answer whichever of the two was wrong."""

    code, title = "invalid_password_or_code", "The password or the code is wrong"


class EmailTaken(Conflict):
    code, title = "email_taken", "This email is already used by an admin"


class InvalidResetToken(BadRequest):
    code, title = "invalid_reset_token", "The reset link is invalid or expired"


class InvalidInvitation(BadRequest):
    code, title = "invalid_invitation", "The invitation is invalid or expired"


class LastOwner(Conflict):
    code, title = "last_owner", "The church must keep at least one owner"


class AuthBusy(ServiceUnavailable):
    code, title = "auth_busy", "Too many logins at once: try again shortly"


class SignupFailed(ServiceUnavailable):
    code, title = "signup_failed", "The church could not be created: try again shortly"
