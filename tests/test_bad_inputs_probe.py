"""probes.bad_inputs: a case's kind comes from what happened (issue 22's classification)."""

from probes.bad_inputs import classify

TRACEBACK = ('Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
             "FileExistsError: [Errno 17] File exists: 'out/models'\n")


def test_a_traceback_is_a_raw_error_whatever_the_exit_code():
    assert classify(False, 1, TRACEBACK)[0] == "raw_error"
    assert classify(False, 2, TRACEBACK, names=("models",))[0] == "raw_error"
    assert classify(True, 0, TRACEBACK)[0] == "raw_error"


def test_refusals_are_clear_only_when_named_and_nothing_is_written():
    err = "risc-tf reproduce: error: unknown optimizer 'adamx'; use a Keras optimizer name\n"
    assert classify(False, 2, err, names=("adamx",))[0] == "clear_error"
    assert classify(False, 2, err, names=("adamx",), written=["NEW/run.json"])[0] == \
        "half_written"
    assert classify(False, 2, err, names=("lr_schedule",))[0] == "raw_error"
    temp = "risc-tf predict: error: [Errno 2] No such file: 'o/missing/.pred.csv.d9a84fce.tmp'"
    assert classify(False, 2, temp, names=("missing",))[0] == "raw_error"
    assert classify(False, 0, "")[0] == "silent_wrong"
    assert classify(False, 2, err, names=("adamx",), wrong=["option ignored"])[0] == \
        "silent_wrong"


def test_valid_inputs_and_lost_files():
    assert classify(True, 0) == ("correct", "")
    assert classify(True, 2, "risc-tf predict: error: no Transfer Syntax UID")[0] == \
        "valid_refused"
    assert classify(True, 0, half=["3 copies not in the CSV"])[0] == "half_written"
    assert classify(True, 0, wrong=["CSV lists 3 of 4 files"])[0] == "silent_wrong"
    assert classify(False, 0, lost=["results.json"])[0] == "data_lost"
    assert classify(True, None)[0] == "raw_error"  # no answer in time
