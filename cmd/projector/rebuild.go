package main

import (
	"time"
)

type rebuildCmd struct {
	Group string `help:"Consumer group of the replay; it must never have been used. Default: <PROJECTOR_GROUP>-rebuild-<UTC time>."`
}

func (c rebuildCmd) Run(e *env) error {
	group := c.Group
	if group == "" {
		group = e.cfg.Group + "-rebuild-" + time.Now().UTC().Format("20060102T150405Z")
	}
	p, _, closeAll, err := e.open()
	if err != nil {
		return err
	}
	defer closeAll()
	_, err = p.Rebuild(e.ctx, group)
	return err
}
