"""movie-service: the catalog, theaters, auditorium seat maps, showtimes and seat availability."""
