"""The dashboard (SPEC §7): misses per day, top missing symbols, counts, health, configuration."""

from .common import admin_route, admin_view


@admin_view("admin.dashboard", renderer="admin/dashboard.jinja2")
def dashboard(request):
    return {}


def includeme(config):
    admin_route(config, "admin.dashboard", "/admin/")
