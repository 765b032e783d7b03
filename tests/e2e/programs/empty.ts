// TEST EQUIPMENT: a program that registers nothing; running it against a stack's state deletes
// every resource in it, as `pulumi destroy` does (harness.destroy).
export {};
