"""movie-service HTTP API: public catalog, admin programme, internal look-up."""
