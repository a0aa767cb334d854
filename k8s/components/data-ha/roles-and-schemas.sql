-- One schema per service, owned by that service's role; a role can touch only its own
-- schema (the same layout as database/init/01-roles-and-schemas.sh, which a test checks).
-- The roles' LOGIN and passwords come from the Cluster's spec.managed.roles; this script
-- creates them first only because the schemas need their owners.
DO $$
DECLARE
  pair text[];
BEGIN
  FOREACH pair SLICE 1 IN ARRAY ARRAY[
    ['auth', 'auth_service'], ['movie', 'movie_service'], ['booking', 'booking_service'],
    ['payment', 'payment_service'], ['notification', 'notification_service']
  ] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = pair[2]) THEN
      EXECUTE format('CREATE ROLE %I', pair[2]);
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), pair[2]);
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', pair[1], pair[2]);
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', pair[1], pair[2]);
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET search_path = %I',
                   pair[2], current_database(), pair[1]);
  END LOOP;
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
