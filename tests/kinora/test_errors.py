from kinora.errors import one_line


def test_one_line_unwraps_a_remote_error_and_keeps_the_first_line():
    class Wrapped(Exception):  # the shape of ray.exceptions.RayTaskError: text is a remote traceback
        def __init__(self, cause):
            super().__init__("ray::Replica.generate()\n  File ...\nValueError: bad")
            self.cause = cause

    assert one_line(Wrapped(ValueError("resolution 512x512 is not allowed"))) == "ValueError: resolution 512x512 is not allowed"
    assert one_line(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert one_line(KeyError()) == "KeyError"
