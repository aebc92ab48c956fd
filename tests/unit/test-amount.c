/* placeholder: written by its owner */
int main(void) { return 0; }
