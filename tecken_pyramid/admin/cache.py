"""Console area: cache (SPEC §7). To be filled in."""


def includeme(config):
    pass
