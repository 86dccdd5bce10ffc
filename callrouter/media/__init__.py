"""The media plane: pjsua2 worker processes (worker/), their RPC (protocol.py), the pool that
supervises them from the controller (pool.py), and the prompt build command (commands.py)."""
