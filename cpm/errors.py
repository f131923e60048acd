"""The error type for bad user input, and the wrapper that turns it into one line for scripts."""
import sys

#: exit status of a script that carried on past inputs it could not read (predict, evaluate, convert_tfrecord): every
#: readable one done, the outputs complete; 2 is a one-line failure of the whole run
SOME_SKIPPED = 3


class UserError(Exception):
    """Bad input from the user (a file, flag or config value). Scripts print it as one line, without a traceback."""


class BadSample(UserError):
    """A record that cannot become a sample: its image is missing, empty, truncated or undecodable, or its joints are
    NaN or far outside the image. The message starts with the file's name."""

    def why(self, name):
        """The message without the leading ``name: ``: what a line that names the file itself says of it."""
        return str(self).removeprefix(f"{name}: ")


class Interrupted(Exception):
    """A run stopped by a signal (engine.resume.SignalStop): the message is printed as it is, and the process exits
    with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a shell reports a process a signal ended."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.status = 128 + int(signum)


def run_main(main):
    """Run a script's ``main()``; a UserError becomes ``error: <message>`` on stderr and exit status 2, a stop by a
    signal (Interrupted, or Ctrl-C elsewhere) one line and status 128 + the signal."""
    try:
        return main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(e, file=sys.stderr)
        sys.exit(e.status)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
