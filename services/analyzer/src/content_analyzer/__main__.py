"""Entry point: ``python -m content_analyzer`` or ``content-analyzer``."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from eventstore_client import EventStoreClient, EventStoreError

from content_analyzer import logs
from content_analyzer.config import Config, ConfigError
from content_analyzer.nlp import PipelineNotFound, TextAnalyzer, load_pipeline
from content_analyzer.worker import Analyzer

logger = logging.getLogger("content_analyzer")


def main() -> int:
    """main runs the analyzer until SIGTERM or SIGINT; it returns the exit
    status: 0 after a clean stop, 1 on a failure, 2 on bad configuration."""
    try:
        cfg = Config.from_env()
    except ConfigError as err:
        print(f"content-analyzer: {err}", file=sys.stderr)
        return 2
    logs.setup(cfg.log_level)
    if not len(cfg.lexicon):
        logger.warning("the toxicity lexicon is empty: no text will be toxic")

    try:
        nlp, _ = load_pipeline(cfg.pipeline)
    except PipelineNotFound as err:
        logger.error("pipeline not found", extra={"err": str(err)})
        return 1
    processor = f"content-analyzer/{cfg.pipeline}-{nlp.meta.get('version', '0')}"
    text = TextAnalyzer(nlp, cfg.lexicon)

    with EventStoreClient(cfg.sidecar_addr) as client:
        analyzer = Analyzer(client, text, cfg, processor)

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            logger.info("stopping", extra={"signal": signal.Signals(signum).name})
            analyzer.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            analyzer.run()
        except EventStoreError as err:
            logger.error("subscription failed", extra={"err": str(err)})
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
