"""The home page: the URL format, curl examples and the CSV report (SPEC §7)."""

from ..routes import STATIC
from ..security_headers import html_response_headers
from ..urls import application_url


def home(request):
    request.response.headers.update(html_response_headers())
    # Reading the identity reads the session cookie when there is one and never
    # creates a session: an anonymous visitor gets no cookie.
    user = request.identity
    superuser = user is not None and user.is_superuser and user.is_active
    return {
        # TECKEN_PUBLIC_URL or a validated Host (else urls.BadHost: a 400 page).
        "base_url": application_url(request),
        # The rules this process applies (SPEC §7: shown to superusers only).
        "rules": request.registry.rules.current if superuser else None,
    }


def includeme(config):
    # CSS (and later the console's JS) lives under /admin/ (SPEC §2), served by the app.
    config.add_static_view(STATIC, "tecken_pyramid:static", cache_max_age=3600)
    config.add_public_view("home", home, renderer="home.jinja2")
