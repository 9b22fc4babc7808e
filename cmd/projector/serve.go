package main

type serveCmd struct{}

func (serveCmd) Run(e *env) error {
	p, _, closeAll, err := e.open()
	if err != nil {
		return err
	}
	defer closeAll()
	return p.Run(e.ctx)
}
