"""The script each rank runs under `paddle.distributed.launch`: reads the job spec the parent `pcls train`
wrote (resolved config, RunOptions, callbacks) and trains; bad input is reported as one `error:` line and exit 2."""

import json
import os
import sys


def main(spec_path: str) -> int:
    import logging

    from pcls.engine.env import world_info
    from pcls.engine.launch import die_with_parent
    from pcls.errors import PclsError
    from pcls.utils.logs import log_to_stderr, route_warnings
    from pcls.utils.quiet import DEBUG_ENV

    route_warnings(debug=os.environ.get(DEBUG_ENV) == "1")  # before paddle is imported: its ccache warning
    die_with_parent()  # paddle's launcher puts each worker in its own session: never outlive it
    log_to_stderr(logging.INFO if world_info()[0] == 0 else logging.WARNING)  # rank 0 speaks for the job

    with open(spec_path) as fh:
        spec = json.load(fh)
    try:
        from pcls.engine.callbacks import rebuild
        from pcls.engine.run_config import RunOptions
        from pcls.engine.trainer import Trainer

        callbacks = [rebuild(item) for item in spec["callbacks"]]
        # rank 0 writes summary.json for the parent
        Trainer(spec["config"], RunOptions.from_json(spec["options"]), callbacks=callbacks).fit()
    except PclsError as err:
        print(f"error: {err.message}", file=sys.stderr, flush=True)
        return err.exit_code
    # an interrupted run saved its checkpoint: exit 0 so the launcher does not tear the others down
    return 0


if __name__ == "__main__":
    from pcls.engine.launch import record_exit  # the runner returns once every worker recorded 0 and exited

    sys.exit(record_exit(main(sys.argv[1])))
