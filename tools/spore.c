/* placeholder: replaced by the lead with the real command-line program */
#include "spore/spore.h"
int main(void) { return 0; }
