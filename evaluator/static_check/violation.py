"""One finding of the static check, in the form that goes back to the model as feedback."""

from pydantic import BaseModel


class Violation(BaseModel):
    """One place where a component's source leaves the contract, with how to fix it."""

    rule: str
    line: int
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "module"
        return f"{where}: [{self.rule}] {self.message} Fix: {self.fix}"
