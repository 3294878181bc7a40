"""Search methods under measured constraints; `create_method(name)` / `list_methods()`."""

from .base import (
                   AccuracySource,
                   BudgetExhausted,
                   FunctionAccuracy,
                   Searcher,
                   SearchResult,
                   TableAccuracy,
                   create_method,
                   list_methods,
                   method_meta,
                   method_supports,
                   register_method,
)

__all__ = ["AccuracySource", "BudgetExhausted", "FunctionAccuracy", "SearchResult", "Searcher", "TableAccuracy",
           "create_method", "list_methods", "method_meta", "method_supports", "register_method"]
