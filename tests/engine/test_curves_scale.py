"""curves.png's loss panel stays readable when one epoch's loss dwarfs the others (issue #24 item 8)."""

from pcls.engine.runlog import loss_scale, plot_curves


def test_a_loss_spike_switches_the_loss_panel_to_log_scale(tmp_path):
    assert loss_scale([2.3, 21.0, 0.4, 0.12]) == "log"  # the demo's first-epoch val loss of 21
    assert loss_scale([2.3, 1.1, 0.6]) == "linear"
    history = [{"epoch": 1, "train_loss": 2.3, "val_loss": 21.0, "lr": 0.1, "train_top1": 0.3, "val_top1": 0.1},
               {"epoch": 2, "train_loss": 0.5, "val_loss": 0.12, "lr": 0.05, "train_top1": 0.8, "val_top1": 0.97}]
    assert plot_curves(history, tmp_path / "curves.png").stat().st_size > 0
