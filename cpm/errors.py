"""The error type for bad user input, and the wrapper that turns it into one line for scripts."""
import sys


class UserError(Exception):
    """Bad input from the user (a file, flag or config value). Scripts print it as one line, without a traceback."""


class BadSample(UserError):
    """A record that cannot become a sample: its image is missing, empty, truncated or undecodable, or its joints are
    NaN or far outside the image. The message starts with the file's name."""


def run_main(main):
    """Run a script's ``main()``; a UserError becomes ``error: <message>`` on stderr and exit status 2."""
    try:
        return main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
