"""Console area: users (SPEC §7). To be filled in."""


def includeme(config):
    pass
