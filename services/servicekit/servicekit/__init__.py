"""Shared plumbing for the Movie Booking services.

This package is a library: it never imports a service and is never run as a
service itself. Each service builds its app with :func:`servicekit.app.build_app`.
"""
