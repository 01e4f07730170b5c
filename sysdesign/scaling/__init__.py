"""Scaling building blocks: the pieces every large design reuses, each a small simulation
or implementation held to theory. ``loadbalancing`` (a SimPy cluster with pluggable
policies -- random, round robin, least connections, power of two choices, a central queue
-- and a server that dies mid-run, with and without health checks and retries),
``caching`` (eviction policies and hit ratios), ``sharding`` (partitioning keys across
nodes) and ``replication`` (copies of data and what readers see). Import the module you
need, e.g. ``from sysdesign.scaling import loadbalancing``.
"""
