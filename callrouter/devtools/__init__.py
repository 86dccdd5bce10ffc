"""Tools that drive a running callrouter from outside, as a user would: `callrouter serve` as a
child process, generated SIPp scenarios. Used by the whole-service tests, `make bench` and
`make demo`; nothing in the service imports them."""
