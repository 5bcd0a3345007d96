"""Console area: extensions (SPEC §7). To be filled in."""


def includeme(config):
    pass
