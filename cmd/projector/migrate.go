package main

import (
	"github.com/eventsidecar/sidecar/internal/projector"
)

type migrateCmd struct{}

func (migrateCmd) Run(e *env) error {
	_, pool, closeAll, err := e.open()
	if err != nil {
		return err
	}
	defer closeAll()
	return projector.Migrate(e.ctx, pool, e.log)
}
