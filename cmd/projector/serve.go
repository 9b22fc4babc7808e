package main

type serveCmd struct{}

func (serveCmd) Run(e *env) error {
	p, _, closeAll, err := e.open()
	if err != nil {
		return err
	}
	defer closeAll()
	if err := p.Run(e.ctx); err != nil {
		return err
	}
	e.log.Info("projector stopped")
	return nil
}
