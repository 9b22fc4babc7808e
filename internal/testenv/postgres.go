package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresURL returns the URL of the PostgreSQL server for tests,
// PROJECTOR_TEST_DATABASE_URL (`make test` starts the server with
// scripts/postgres.sh and sets it). Without it the test is skipped, or
// fails when SIDECAR_TEST_REQUIRE_REAL says that every real service must
// be there.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("PROJECTOR_TEST_DATABASE_URL")
	if u == "" {
		if os.Getenv("SIDECAR_TEST_REQUIRE_REAL") != "" {
			t.Fatal("SIDECAR_TEST_REQUIRE_REAL is set but PROJECTOR_TEST_DATABASE_URL is not")
		}
		t.Skip("PROJECTOR_TEST_DATABASE_URL is not set; scripts/postgres.sh start and set it to run this test")
	}
	return u
}

// Postgres creates a database no other test uses on the test server and
// returns its URL; the database is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(PostgresURL(t))
	if err != nil {
		t.Fatalf("PROJECTOR_TEST_DATABASE_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to the test postgres: %v", err)
	}
	defer admin.Close(context.Background())
	name := fmt.Sprintf("test_%08x_%d", rand.Uint32(), time.Now().UnixNano()%1e6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("connect to drop database %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(PostgresURL(t))
	if err != nil || u.Scheme == "" {
		t.Fatalf("PROJECTOR_TEST_DATABASE_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// PostgresPool returns a pool on a fresh database (see Postgres), closed
// when the test ends.
func PostgresPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), Postgres(t))
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
